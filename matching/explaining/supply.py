"""Supply against demand per category × region, before solving.

For a cell — a category and a province (2-digit) or city (4-digit) prefix — *demand* is
the number of open (not pinned) requests in it, and *supply* is an upper bound on how
many of them the providers could take even if no other cell competed::

    supply(cell) = Σ_p min(free_p, #requests in the cell that p may serve)

over providers with the skill that are active, not paused and have free capacity (after
pins), where "may serve" applies the region (served or remote), conflict and exclusion
rules. ``demand > supply`` is therefore a *binding* shortage: at least
``demand − supply`` requests of that cell will go unmatched whatever the solver does, and
the coordinator should recruit or widen regions before running the match.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from matching.encode import Encoded, PairSet, encode
from matching.problem import Problem
from matching.scoring.features import region_table, unique_codes
from matching.validate import validate

__all__ = ["Shortage", "check_supply"]


@dataclass(frozen=True, slots=True)
class Shortage:
    """A category × region cell whose open demand exceeds the reachable free capacity.

    ``level`` is ``"province"`` (2-digit ``region``) or ``"city"`` (4-digit). ``providers``
    counts providers that could take at least one of the cell's requests.
    """

    category: str
    region: str
    level: str
    demand: int
    supply: int
    providers: int
    message_en: str
    message_zh: str

    @property
    def shortfall(self) -> int:
        """Requests of the cell that must go unmatched: ``demand - supply``."""
        return self.demand - self.supply


def _messages(label: tuple[str, str], region: str, demand: int, supply: int) -> tuple[str, str]:
    """(en, zh) messages naming the category by its labels, never its key."""
    zh_name, en_name = label
    if supply == 0:
        return (
            f"no unconflicted expert or platform for {en_name} in {region} with free capacity"
            f" ({demand} open request{'s' if demand != 1 else ''})",
            f"{region} 地区没有可服务「{zh_name}」、无利益冲突且有空余容量的专家或平台"
            f"（{demand} 项诉求待匹配）",
        )
    return (
        f"{en_name} in {region}: demand {demand} requests vs free capacity {supply}"
        f" (short by {demand - supply})",
        f"{region} 地区「{zh_name}」：需求 {demand} 项，可用空余容量 {supply}"
        f"（缺口 {demand - supply}）",
    )


def _cells(counties: NDArray[np.object_]) -> tuple[list[str], sp.csr_array]:
    """Province and city prefixes of the counties, and a ``(cells, counties)`` incidence."""
    names: list[str] = []
    rows: list[int] = []
    cols: list[int] = []
    for length in (2, 4):
        prefixes, of = unique_codes([c[:length] for c in counties])
        rows.extend((len(names) + of).tolist())
        cols.extend(range(len(counties)))
        names.extend(prefixes.tolist())
    data = np.ones(len(rows), dtype=np.int64)
    return names, sp.csr_array((data, (rows, cols)), shape=(len(names), len(counties)))


def _forbidden_counts(
    enc: Encoded,
    rows: NDArray[np.intp],
    provs: NDArray[np.intp],
    county_of: NDArray[np.intp],
    allowed: NDArray[np.bool_],
    incidence: sp.csr_array,
) -> NDArray[np.int64]:
    """``(cells, providers)`` count of region-allowed but conflicted/excluded pairs."""
    both = PairSet.of(
        [
            *zip(enc.conflicts.req.tolist(), enc.conflicts.prov.tolist(), strict=True),
            *zip(enc.excluded.req.tolist(), enc.excluded.prov.tolist(), strict=True),
        ]
    )
    row_pos = np.full(enc.n_req, -1, dtype=np.intp)
    row_pos[rows] = np.arange(len(rows))
    col_pos = np.full(enc.n_prov, -1, dtype=np.intp)
    col_pos[provs] = np.arange(len(provs))
    r, c = row_pos[both.req], col_pos[both.prov]
    inside = (r >= 0) & (c >= 0)
    county, col = county_of[r[inside]], c[inside]
    hit = allowed[county, col]
    per_county = sp.csr_array(
        (np.ones(hit.sum(), dtype=np.int64), (county[hit], col[hit])), shape=allowed.shape
    )
    return np.asarray((incidence @ per_county).toarray(), dtype=np.int64)


def _category_shortages(enc: Encoded, cat: int, open_: NDArray[np.bool_]) -> list[Shortage]:
    rows = np.flatnonzero(open_ & (enc.req_cat == cat))
    if len(rows) == 0:
        return []
    column = enc.skill[:, [cat]].tocoo()
    provs = np.sort(column.row.astype(np.intp))
    provs = provs[enc.available[provs] & (enc.free[provs] > 0)]
    counties, county_of = unique_codes(list(enc.req_region[rows]))
    names, incidence = _cells(counties)
    demand_county = np.bincount(county_of, minlength=len(counties))
    demand = incidence @ demand_county
    allowed = (
        region_table(list(counties), [enc.prov_regions[p] for p in provs], enc.remote[provs]) > 0
    )
    eligible = incidence @ (allowed * demand_county[:, None])
    eligible = eligible - _forbidden_counts(enc, rows, provs, county_of, allowed, incidence)
    supply = np.minimum(eligible, enc.free[provs][None, :]).sum(axis=1)
    serving = (eligible > 0).sum(axis=1)
    category = enc.categories[cat]
    out = []
    for i in np.flatnonzero(demand > supply).tolist():
        en, zh = _messages(enc.lexicon.label(category), names[i], int(demand[i]), int(supply[i]))
        level = "province" if len(names[i]) == 2 else "city"
        out.append(
            Shortage(
                category, names[i], level, int(demand[i]), int(supply[i]), int(serving[i]), en, zh
            )
        )
    return out


def check_supply(problem: Problem) -> list[Shortage]:
    """Binding shortages per category × province and city, largest shortfall first.

    Pinned requests are not demand and their pins consume capacity; nor are requests with
    secondary categories, which other cells' providers may take. The bound ignores
    ``min_score`` and competition between cells, so every reported shortage is real
    (some requests *will* be unmatched), while an empty list does not promise that all
    requests will be matched.

    Parameters
    ----------
    problem : Problem

    Returns
    -------
    list of Shortage
        Sorted by shortfall (descending), then category, then region.
    """
    validate(problem)
    enc = encode(problem)
    free = enc.free - np.bincount(enc.pinned.prov, minlength=enc.n_prov)
    enc = replace(enc, free=free)
    open_ = np.ones(enc.n_req, dtype=bool)
    open_[enc.pinned.req] = False
    open_[np.diff(enc.extra.indptr) > 0] = False  # secondary categories may serve them
    out = [s for cat in range(len(enc.categories)) for s in _category_shortages(enc, cat, open_)]
    return sorted(out, key=lambda s: (-s.shortfall, s.category, s.region))
