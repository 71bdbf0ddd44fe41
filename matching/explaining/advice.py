"""Recruitment advice: where one more unit of capacity would raise the optimum most.

The solved problem is a transportation problem (request ``i`` takes up to ``demand[i]``
distinct providers, column ``c`` up to ``capacity[c]`` requests, each pair at most once),
so its optimum is a concave, piecewise-linear function of the capacities with breakpoints
at integers, and the exact gain of *one* more slot is the provider's **least** optimal dual
price — not any dual price: the auction's or HiGHS' prices only bound it from above.

The least prices are longest paths in the residual graph of the optimal assignment
(Bellman-Ford; the optimum has no positive cycle). With a virtual node ``o`` standing for
both source and sink, the arcs are:

* ``o → i``  when request ``i`` has room for one more provider (gain 0),
* ``o → c``  when column ``c`` holds a request (it may give one back; gain 0),
* ``i → c``  for a candidate pair not chosen (gain ``g_ic``),
* ``c → i``  for a chosen pair (``i`` leaves ``c``; gain ``-g_ic``).

``potential[i]`` is the longest path ``o ⇝ i``. A new slot that request ``i`` could take
at gain ``h_i`` (``i`` not already served by that provider) raises the optimum by exactly
``max(0, max_i potential[i] + h_i)``: the best alternating path that ends in the new slot.
That is the number the advice reports per category × region (the slot used by a request
of that cell); ``tests/matching/test_advice.py`` checks it against re-solving with the
extra slot (scipy ``milp``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from matching.encode import Encoded
from matching.problem import Id

__all__ = ["MAX_ROUNDS", "Advice", "advise", "messages", "potentials", "slot_gain"]

#: Bellman-Ford rounds before the potentials are reported as lower bounds (``exact=False``).
MAX_ROUNDS = 2000
_NONE = -np.inf


@dataclass(frozen=True, slots=True)
class Advice:
    """One category × region cell with requests left short of providers.

    Attributes
    ----------
    category : str
    region : str
        Region code prefix of the requests (city level, 4 digits, by default).
    marginal_score : float or None
        Exact rise of the optimum if the best provider for the cell (``provider``) had one
        more slot for one of the cell's requests. ``None`` when no request of the cell has a
        candidate at all: only recruiting a new provider helps there.
    provider : Id or None
        Where that slot helps most.
    requests : tuple of Id
        The cell's requests left without (all their) providers, sorted by id.
    with_candidates : int
        How many of them had candidates whose capacity went elsewhere.
    slots_needed : int
        Missing providers summed over ``requests`` (a team request may miss several).
    providers_needed : int
        ``ceil(slots_needed / typical capacity)`` of the cell's providers (1 if none).
    exact : bool
        False only when the longest-path rounds hit :data:`MAX_ROUNDS` (then
        ``marginal_score`` is a lower bound).
    """

    category: str
    region: str
    marginal_score: float | None
    provider: Id | None
    requests: tuple[Id, ...]
    with_candidates: int
    slots_needed: int
    providers_needed: int
    exact: bool
    message_zh: str
    message_en: str


def potentials(
    gains: sp.csr_array,
    demand: NDArray[np.int64],
    chosen: NDArray[np.bool_],
) -> tuple[NDArray[np.float64], bool]:
    """Longest residual paths ``o ⇝ i`` of an optimal assignment (see the module docstring).

    Parameters
    ----------
    gains : csr_array, shape (n_rows, n_cols)
        Canonical CSR of candidate gains (> 0).
    demand : ndarray of int64, shape (n_rows,)
        Providers each row may take (1 for a single assignment).
    chosen : ndarray of bool, shape (gains.nnz,)
        The optimal assignment, per explicit entry.

    Returns
    -------
    potential : ndarray of float64, shape (n_rows,)
        ``-inf`` where no path reaches the row.
    exact : bool
        False if :data:`MAX_ROUNDS` ran out (the values are then lower bounds).
    """
    n_rows, n_cols = gains.shape
    rows = np.repeat(np.arange(n_rows), np.diff(gains.indptr))
    cols, g = gains.indices, gains.data
    held = np.bincount(rows[chosen], minlength=n_rows)
    flow = np.bincount(cols[chosen], minlength=n_cols)
    row_d = np.where(held < demand, 0.0, _NONE)
    col_d = np.where(flow > 0, 0.0, _NONE)
    tol = 1e-12 * max(1.0, float(g.max())) if g.size else 0.0
    free, take = ~chosen, chosen
    for _ in range(MAX_ROUNDS):
        new_col = col_d.copy()
        np.maximum.at(new_col, cols[free], row_d[rows[free]] + g[free])
        new_row = row_d.copy()
        np.maximum.at(new_row, rows[take], new_col[cols[take]] - g[take])
        changed = (new_row > row_d + tol).any() or (new_col > col_d + tol).any()
        row_d, col_d = np.maximum(row_d, new_row), np.maximum(col_d, new_col)
        if not changed:
            return row_d, True
    return row_d, False


def slot_gain(potential: NDArray[np.float64], gain: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rise of the optimum if request ``i`` alone could take a new slot at gain ``h_i``.

    Elementwise ``max(0, potential + h)``; a pair already chosen must be left out by the
    caller (a provider serves a request once)."""
    with np.errstate(invalid="ignore"):
        return np.maximum(potential + gain, 0.0)


def _cell_key(enc: Encoded, r: int, digits: int) -> tuple[str, str]:
    return enc.categories[enc.req_cat[r]], str(enc.req_region[r])[:digits]


def advise(
    enc: Encoded,
    *,
    missing: NDArray[np.int64],
    pair_req: NDArray[np.intp],
    pair_prov: NDArray[np.intp],
    pair_value: NDArray[np.float64],
    capacity: NDArray[np.int64],
    exact: bool = True,
    labels: Mapping[str, tuple[str, str]] | None = None,
    region_digits: int = 4,
) -> tuple[Advice, ...]:
    """Advice per category × region cell holding requests short of providers.

    Parameters
    ----------
    enc : Encoded
    missing : ndarray of int64, shape (n_req,)
        Providers each request still lacks after the solve (0 for served or pinned ones).
    pair_req, pair_prov, pair_value : ndarrays, shape (n_pairs,)
        Candidate pairs not chosen, and :func:`slot_gain` of each: the optimum's rise if
        the provider had one more slot for that request.
    capacity : ndarray of int64, shape (n_prov,)
        Total capacity of each provider (the "typical capacity" of a cell's providers).
    exact : bool
        What :func:`potentials` returned.
    labels : mapping category -> (zh, en), optional
        Display names; the category key otherwise.

    Returns
    -------
    tuple of Advice
        Highest ``marginal_score`` first, cells only a recruit can help last (most
        requests first), ties by category and region.
    """
    cells: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in np.flatnonzero(missing > 0).tolist():
        cells[_cell_key(enc, r, region_digits)].append(r)
    providers: dict[tuple[str, str], set[int]] = defaultdict(set)
    best: dict[tuple[str, str], tuple[float, int]] = {}
    for r, p, v in zip(pair_req.tolist(), pair_prov.tolist(), pair_value.tolist(), strict=True):
        key = _cell_key(enc, r, region_digits)
        if key in cells:
            providers[key].add(p)
            if v > best.get(key, (-1.0, -1))[0]:
                best[key] = (v, p)
    has_candidates = set(pair_req.tolist())
    out = []
    for key, rows in cells.items():
        slots = int(missing[rows].sum())
        pool = sorted(providers[key])
        typical = float(np.median(capacity[pool])) if pool else 1.0
        needed = max(1, math.ceil(slots / max(typical, 1.0)))
        found = best.get(key)
        label = (labels or {}).get(key[0], (key[0], key[0]))
        marginal = None if found is None else float(found[0])
        zh, en = messages(label, key[1], needed, slots, len(rows), marginal)
        out.append(
            Advice(
                category=key[0],
                region=key[1],
                marginal_score=marginal,
                provider=None if found is None else enc.prov_ids[found[1]],
                requests=tuple(enc.req_ids[r] for r in sorted(rows)),
                with_candidates=sum(r in has_candidates for r in rows),
                slots_needed=slots,
                providers_needed=needed,
                exact=exact,
                message_zh=zh,
                message_en=en,
            )
        )
    out.sort(
        key=lambda a: (
            a.marginal_score is None,
            -(a.marginal_score or 0.0),
            -len(a.requests),
            a.category,
            a.region,
        )
    )
    return tuple(out)


def messages(
    label: tuple[str, str],
    region: str,
    needed: int,
    slots: int,
    n: int,
    marginal: float | None,
) -> tuple[str, str]:
    """The advice in one line each, Chinese and English (``label`` = (zh, en) category name).

    Public so that a caller holding display names (the app's taxonomy) can word stored
    advice again without re-solving."""
    zh = f"在 {region} 增加 {needed} 名{label[0]}服务方（{slots} 个名额）可再服务 {n} 个诉求"
    en = (
        f"{needed} more {label[1]} provider{'s' if needed != 1 else ''} in {region}"
        f" ({slots} slot{'s' if slots != 1 else ''}) would serve {n} more"
        f" request{'s' if n != 1 else ''}"
    )
    if marginal is None:
        return f"{zh}；目前没有可用的候选服务方", f"{en}; no provider can take them today"
    return (
        f"{zh}；每增加 1 个名额总分提高 {marginal:.2f}",
        f"{en}; one more slot raises the total score by {marginal:.2f}",
    )
