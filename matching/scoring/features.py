"""Pair features in [0, 1] and request priority.

Five features (order :data:`matching.scoring.weights.FEATURES`):

* **skill** — the provider's level in the request's category / 3 (0 when not covered, but
  such pairs are never scored: candidates are blocked on category);
* **text** — cosine of TF-IDF vectors (:mod:`matching.scoring.text`);
* **industry** — longest common GB/T 4754 prefix of the request's code and a served
  prefix, in hierarchy levels (section letter, division, group, class) over the request
  code's levels; 1 when a served prefix contains the code or lies inside it; providers
  serving any industry (empty list) get :data:`GENERALIST_INDUSTRY`;
* **region** — how specifically a served prefix covers the request's county: same county 1
  > same city > same province > anywhere (empty list) > remote only; 0 = not served;
* **rating** — rating / 5, :data:`NEUTRAL_RATING` / 5 when unrated.

Industry and region fits only depend on the request's *code* and the provider, so they are
computed as small integer tables ``(distinct request codes, providers)`` and gathered per
request chunk. Industry is stored in twelfths (exact: level ratios k/L with L <= 4) and
region as a level 0–5, so the blocked and the per-pair paths give bit-identical values.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

from matching.scoring.weights import Weights

__all__ = [
    "GENERALIST_INDUSTRY",
    "INDUSTRY_FIT",
    "NEUTRAL_RATING",
    "N_LEVELS",
    "REGION_FIT",
    "RegionLevel",
    "combine",
    "context_code",
    "fit_plane",
    "industry_pairs",
    "industry_table",
    "priority",
    "rating_fit",
    "region_pairs",
    "region_table",
    "split_code",
    "unique_codes",
]

#: Industry fit of a provider that lists no industry (serves all).
GENERALIST_INDUSTRY = 0.5
#: Rating assumed for an unrated provider: the middle of the 1–5 feedback scale.
NEUTRAL_RATING = 3.0
_TWELFTHS = 12
#: Lookup table: stored industry value (twelfths, 0–12) -> fit.
INDUSTRY_FIT: NDArray[np.float64] = np.arange(_TWELFTHS + 1) / _TWELFTHS
_INDUSTRY_LENGTHS = (1, 3, 4, 5)
_REGION_LENGTHS = (2, 4, 6)


class RegionLevel:
    """Stored region levels (uint8), in increasing order of proximity."""

    NOT_SERVED = 0
    REMOTE = 1
    ANYWHERE = 2
    PROVINCE = 3
    CITY = 4
    COUNTY = 5


#: Lookup table: region level -> fit. Remote-only help still beats nothing, but an expert
#: who can visit (same county > city > province) is preferred.
REGION_FIT: NDArray[np.float64] = np.array([0.0, 0.1, 0.25, 0.5, 0.75, 1.0])


def unique_codes(codes: Sequence[str]) -> tuple[NDArray[np.object_], NDArray[np.intp]]:
    """Distinct codes (sorted) and the index of each input code among them."""
    values, inverse = np.unique(np.asarray(codes, dtype=str), return_inverse=True)
    return values.astype(object), inverse.astype(np.intp)


def _prefix_ids(codes: Sequence[str], lengths: tuple[int, ...]) -> NDArray[np.int64]:
    """``(n, len(lengths))`` ids of each code's prefix of each length; -1 when too short.

    Ids are shared between every call of one level through the sorted prefix strings, so
    call it once on the concatenation of both sides.
    """
    out = np.full((len(codes), len(lengths)), -1, dtype=np.int64)
    arr = np.asarray(codes, dtype=str)
    size = np.char.str_len(arr) if len(arr) else np.zeros(0, dtype=int)
    for j, length in enumerate(lengths):
        long_enough = size >= length
        if long_enough.any():
            cut = arr[long_enough].astype(f"<U{length}")
            out[long_enough, j] = np.unique(cut, return_inverse=True)[1]
    return out


#: A provider's served prefixes as base-table columns, slot by slot: ``slots[j]`` holds the
#: providers with more than ``j`` columns and their ``j``-th column. Slot 0 covers everyone.
_Slots: TypeAlias = list[tuple[NDArray[np.intp], NDArray[np.intp]]]


def _slots(
    served: Sequence[tuple[str, ...]], remote: NDArray[np.bool_] | None
) -> tuple[list[str], _Slots]:
    """Distinct prefixes and each provider's columns into ``base`` + two sentinel columns.

    Column ``len(prefixes)`` stands for "serves any" (a provider with no prefix) and
    ``len(prefixes) + 1`` for "helps remotely", so that empty lists and the remote flag
    need no special pass: the table is a max over columns, sentinels included.
    """
    everyone = list(chain.from_iterable(served))  # every provider's prefixes, in order
    flat = sorted(set(everyone))
    index = {prefix: i for i, prefix in enumerate(flat)}
    any_col, remote_col = len(flat), len(flat) + 1
    # each provider's own columns sit at ``start[i]:start[i] + own[i]`` of ``codes``; the
    # sentinel columns follow them: "any" for a provider with none, then "remote"
    own = np.fromiter(map(len, served), dtype=np.intp, count=len(served))
    start = np.cumsum(own) - own
    codes = np.fromiter(map(index.__getitem__, everyone), dtype=np.intp, count=len(everyone))
    codes = np.append(codes, any_col)  # a valid index for rows whose column is a sentinel
    with_any = np.maximum(own, 1)
    counts = with_any + (np.zeros_like(own) if remote is None else np.asarray(remote, np.intp))
    slots = []
    for j in range(int(counts.max(initial=0))):
        who = np.flatnonzero(counts > j)
        mine = own[who] > j
        sentinel = np.where(with_any[who] > j, any_col, remote_col)
        taken = codes[np.where(mine, start[who] + j, len(everyone))]
        slots.append((who, np.where(mine, taken, sentinel).astype(np.intp)))
    return flat, slots


def _with_sentinels(
    base: NDArray[np.uint8], any_value: int, remote_value: int
) -> NDArray[np.uint8]:
    sentinels = np.array([[any_value, remote_value]], dtype=np.uint8).repeat(base.shape[0], axis=0)
    return np.hstack([base, sentinels])


def _table_max(base: NDArray[np.uint8], slots: _Slots, n: int) -> NDArray[np.uint8]:
    """``(n_codes, n)``: per provider, the max of ``base`` over its columns."""
    out = np.zeros((base.shape[0], n), dtype=np.uint8)
    for j, (who, cols) in enumerate(slots):
        taken = np.take(base, cols, axis=1)
        if j == 0:
            out = taken  # slot 0 covers every provider, in order
        else:
            out[:, who] = np.maximum(out[:, who], taken)
    return out


def _pairs_max(
    base: NDArray[np.uint8], code_of: NDArray[np.intp], slots: _Slots
) -> NDArray[np.uint8]:
    """``(n,)``: per pair ``i``, the max of ``base[code_of[i]]`` over its provider's columns."""
    out = np.zeros(len(code_of), dtype=np.uint8)
    for j, (who, cols) in enumerate(slots):
        taken = base[code_of[who], cols]
        out[who] = taken if j == 0 else np.maximum(out[who], taken)
    return out


def _industry_base(codes: Sequence[str], prefixes: Sequence[str]) -> NDArray[np.uint8]:
    """``(n_codes, n_prefixes + 2)`` industry fit in twelfths of code × prefix (+ sentinels)."""
    ids = _prefix_ids([*codes, *prefixes], _INDUSTRY_LENGTHS)
    left, right = ids[: len(codes)], ids[len(codes) :]
    common = np.zeros((len(codes), len(prefixes)), dtype=np.int64)
    for j in range(len(_INDUSTRY_LENGTHS)):
        common += (left[:, j, None] == right[None, :, j]) & (left[:, j, None] >= 0)
    depth_code = (left >= 0).sum(axis=1)[:, None]
    depth_prefix = (right >= 0).sum(axis=1)[None, :]
    nested = common == np.minimum(depth_code, depth_prefix)
    twelfths = np.where(nested, _TWELFTHS, common * _TWELFTHS // np.maximum(depth_code, 1))
    return _with_sentinels(twelfths.astype(np.uint8), round(GENERALIST_INDUSTRY * _TWELFTHS), 0)


def industry_table(codes: Sequence[str], served: Sequence[tuple[str, ...]]) -> NDArray[np.uint8]:
    """Industry fit, in twelfths, of each request code × each provider.

    Parameters
    ----------
    codes : sequence of str, shape (n_codes,)
        Distinct GB/T 4754 request codes.
    served : sequence of tuple of str, shape (n_providers,)
        Each provider's served industry prefixes (empty = any industry).

    Returns
    -------
    ndarray of uint8, shape (n_codes, n_providers)
        Values 0–12; map with :data:`INDUSTRY_FIT`.
    """
    prefixes, slots = _slots(served, None)
    return _table_max(_industry_base(codes, prefixes), slots, len(served))


def _region_base(regions: Sequence[str], prefixes: Sequence[str]) -> NDArray[np.uint8]:
    """``(n_regions, n_prefixes + 2)`` level of county × served prefix (0 = outside)."""
    ids = _prefix_ids([*regions, *prefixes], _REGION_LENGTHS)
    left, right = ids[: len(regions)], ids[len(regions) :]
    level = np.zeros((len(regions), len(prefixes)), dtype=np.uint8)
    for j, value in enumerate((RegionLevel.PROVINCE, RegionLevel.CITY, RegionLevel.COUNTY)):
        own_length = (right >= 0).sum(axis=1) == j + 1
        hit = (left[:, j, None] == right[None, :, j]) & own_length[None, :]
        level[hit] = value
    return _with_sentinels(level, RegionLevel.ANYWHERE, RegionLevel.REMOTE)


def region_table(
    regions: Sequence[str], served: Sequence[tuple[str, ...]], remote: NDArray[np.bool_]
) -> NDArray[np.uint8]:
    """Region level (:class:`RegionLevel`) of each request county × each provider.

    Parameters
    ----------
    regions : sequence of str, shape (n_regions,)
        Distinct 6-digit request county codes.
    served : sequence of tuple of str, shape (n_providers,)
        Served region prefixes (2, 4 or 6 digits; empty = anywhere).
    remote : ndarray of bool, shape (n_providers,)
        Whether the provider helps remotely where it does not serve on site.

    Returns
    -------
    ndarray of uint8, shape (n_regions, n_providers)
        0 means the hard rule "region not served" removes the pair.
    """
    prefixes, slots = _slots(served, remote)
    return _table_max(_region_base(regions, prefixes), slots, len(served))


def _code_index(codes: Sequence[str]) -> tuple[list[str], NDArray[np.intp]]:
    if not len(codes):
        return [], np.zeros(0, dtype=np.intp)
    uniq, code_of = unique_codes(codes)
    return list(uniq), code_of


def industry_pairs(codes: Sequence[str], served: Sequence[tuple[str, ...]]) -> NDArray[np.uint8]:
    """Industry fit in twelfths of pairs ``(codes[i], served[i])``, shape ``(n,)``.

    The same base table and maximum as :func:`industry_table`, for a list of pairs.
    """
    prefixes, slots = _slots(served, None)
    uniq, code_of = _code_index(codes)
    return _pairs_max(_industry_base(uniq, prefixes), code_of, slots)


def region_pairs(
    regions: Sequence[str], served: Sequence[tuple[str, ...]], remote: NDArray[np.bool_]
) -> NDArray[np.uint8]:
    """Region level of pairs ``(regions[i], served[i], remote[i])``, shape ``(n,)``.

    The same base table and maximum as :func:`region_table`, for a list of pairs.
    """
    prefixes, slots = _slots(served, remote)
    uniq, code_of = _code_index(regions)
    return _pairs_max(_region_base(uniq, prefixes), code_of, slots)


def rating_fit(rating: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rating / 5 with NaN (unrated) as :data:`NEUTRAL_RATING`; shape preserved."""
    return np.where(np.isnan(rating), NEUTRAL_RATING, rating) / 5.0


def priority(
    urgency: NDArray[np.int64], tier: NDArray[np.int64], weights: Weights
) -> NDArray[np.float64]:
    """Request priority ``(1 + g_u (urgency - 1)) (1 + g_t tier)``, shape ``(n_req,)``, >= 1."""
    return (1.0 + weights.urgency_gain * (urgency - 1.0)) * (1.0 + weights.tier_gain * tier)


def combine(
    skill: NDArray[np.float64],
    text: NDArray[np.float64],
    industry: NDArray[np.float64],
    region: NDArray[np.float64],
    rating: NDArray[np.float64],
    weights: Weights,
) -> NDArray[np.float64]:
    """The fit: normalised weighted sum of the five features (broadcasting).

    The summation order is fixed — (text + provider part) + (industry + region) — and
    :func:`fit_plane` follows it, so blocked (matrix) and per-pair (vector) evaluation
    round identically: a candidate's fit never depends on how it was computed.
    """
    w = weights.normalised
    return (w[1] * text + (w[0] * skill + w[4] * rating)) + (w[2] * industry + w[3] * region)


#: Number of region levels; a *context code* is ``industry twelfths × 6 + region level``.
N_LEVELS = len(REGION_FIT)


def context_code(industry: NDArray[np.uint8], region: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Pack industry twelfths (0–12) and region level (0–5) into one uint8 (0–77), in place."""
    industry *= N_LEVELS
    industry += region
    return industry


def split_code(code: NDArray[np.uint8]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Industry and region features of context codes (inverse of :func:`context_code`)."""
    return INDUSTRY_FIT[code // N_LEVELS], REGION_FIT[code % N_LEVELS]


def fit_plane(
    provider_part: NDArray[np.float64],
    text: NDArray[np.float64],
    code: NDArray[np.uint8],
    weights: Weights,
) -> NDArray[np.float64]:
    """:func:`combine` over a dense ``(m, b)`` chunk in few passes over memory.

    Industry and region enter through one lookup table over context codes whose entries
    round exactly like ``w_industry × industry + w_region × region``; codes with region
    level 0 (not served) map to ``-inf``, so the region rule costs no extra pass.

    Parameters
    ----------
    provider_part : ndarray of float64, shape (b,)
        ``w_skill × skill + w_rating × rating`` of the block's providers.
    text : ndarray of float64, shape (m, b)
        Text similarities in [0, 1].
    code : ndarray of uint8, shape (m, b)
        Context codes (:func:`context_code`).

    Returns
    -------
    ndarray of float64, shape (m, b)
        Bit-identical to ``combine`` on the same features where the region is served,
        ``-inf`` elsewhere.
    """
    w = weights.normalised
    table = w[2] * INDUSTRY_FIT[:, None] + w[3] * REGION_FIT[None, :]
    table[:, RegionLevel.NOT_SERVED] = -np.inf
    fit = np.multiply(text, w[1])
    fit += provider_part
    fit += table.ravel()[code]
    return fit
