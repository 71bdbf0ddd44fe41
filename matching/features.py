"""Pair features in [0, 1] and request priority.

Five features (order :data:`matching.weights.FEATURES`):

* **skill** — the provider's level in the request's category / 3 (0 when not covered, but
  such pairs are never scored: candidates are blocked on category);
* **text** — cosine of TF-IDF vectors (:mod:`matching.text`);
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

import numpy as np
from numpy.typing import NDArray

from matching.weights import Weights

__all__ = [
    "GENERALIST_INDUSTRY",
    "INDUSTRY_FIT",
    "NEUTRAL_RATING",
    "REGION_FIT",
    "RegionLevel",
    "combine",
    "fit_plane",
    "industry_pairs",
    "industry_table",
    "priority",
    "rating_fit",
    "region_pairs",
    "region_table",
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


def _ragged(
    served: Sequence[tuple[str, ...]],
) -> tuple[NDArray[np.object_], NDArray[np.intp], NDArray[np.intp]]:
    """Flatten per-provider prefix lists: distinct prefixes, flat column ids, owner ids."""
    flat = [prefix for prefixes in served for prefix in prefixes]
    owner = np.repeat(np.arange(len(served)), [len(p) for p in served]).astype(np.intp)
    values, column = unique_codes(flat) if flat else (np.empty(0, object), np.empty(0, np.intp))
    return values, column, owner


def _provider_max(
    base: NDArray[np.uint8], column: NDArray[np.intp], owner: NDArray[np.intp], n: int
) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    """Max of ``base[:, column]`` over each provider's prefixes -> ``(n_codes, n)``.

    Also returns which providers have at least one prefix (the others are "any").
    """
    out = np.zeros((n, base.shape[0]), dtype=np.uint8)
    has = np.bincount(owner, minlength=n) > 0
    single = np.bincount(owner, minlength=n)[owner] == 1
    base_t = np.ascontiguousarray(base.T)  # rows per prefix: contiguous gathers and reductions
    out[owner[single]] = base_t[column[single]]
    multi = np.flatnonzero(~single)
    if len(multi):
        owners = owner[multi]
        starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
        out[owners[starts]] = np.maximum.reduceat(base_t[column[multi]], starts)
    return np.ascontiguousarray(out.T), has


def _industry_base(codes: Sequence[str], prefixes: Sequence[str]) -> NDArray[np.uint8]:
    """``(n_codes, n_prefixes)`` industry fit in twelfths of each code × served prefix."""
    ids = _prefix_ids([*codes, *prefixes], _INDUSTRY_LENGTHS)
    left, right = ids[: len(codes)], ids[len(codes) :]
    common = np.zeros((len(codes), len(prefixes)), dtype=np.int64)
    for j in range(len(_INDUSTRY_LENGTHS)):
        common += (left[:, j, None] == right[None, :, j]) & (left[:, j, None] >= 0)
    depth_code = (left >= 0).sum(axis=1)[:, None]
    depth_prefix = (right >= 0).sum(axis=1)[None, :]
    nested = common == np.minimum(depth_code, depth_prefix)
    twelfths = np.where(nested, _TWELFTHS, common * _TWELFTHS // np.maximum(depth_code, 1))
    return twelfths.astype(np.uint8)


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
    values, column, owner = _ragged(served)
    base = _industry_base(codes, list(values))
    table, has = _provider_max(base, column, owner, len(served))
    table[:, ~has] = round(GENERALIST_INDUSTRY * _TWELFTHS)
    return table


def _region_base(regions: Sequence[str], prefixes: Sequence[str]) -> NDArray[np.uint8]:
    """``(n_regions, n_prefixes)`` level of each county code × served prefix (0 = outside)."""
    ids = _prefix_ids([*regions, *prefixes], _REGION_LENGTHS)
    left, right = ids[: len(regions)], ids[len(regions) :]
    level = np.zeros((len(regions), len(prefixes)), dtype=np.uint8)
    for j, value in enumerate((RegionLevel.PROVINCE, RegionLevel.CITY, RegionLevel.COUNTY)):
        own_length = (right >= 0).sum(axis=1) == j + 1
        hit = (left[:, j, None] == right[None, :, j]) & own_length[None, :]
        level[hit] = value
    return level


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
    values, column, owner = _ragged(served)
    table, has = _provider_max(_region_base(regions, list(values)), column, owner, len(served))
    table[:, ~has] = RegionLevel.ANYWHERE
    table[(table == RegionLevel.NOT_SERVED) & remote[None, :]] = RegionLevel.REMOTE
    return table


def _pair_max(
    base: NDArray[np.uint8],
    code_of: NDArray[np.intp],
    column: NDArray[np.intp],
    owner: NDArray[np.intp],
    n: int,
) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    """Per pair ``i``: max over its provider's prefixes of ``base[code_of[i], prefix]``."""
    out = np.zeros(n, dtype=np.uint8)
    has = np.zeros(n, dtype=bool)
    has[owner] = True
    np.maximum.at(out, owner, base[code_of[owner], column])
    return out, has


def industry_pairs(codes: Sequence[str], served: Sequence[tuple[str, ...]]) -> NDArray[np.uint8]:
    """Industry fit in twelfths of pairs ``(codes[i], served[i])``, shape ``(n,)``.

    Same values as :func:`industry_table` (same base table), for a list of pairs.
    """
    values, column, owner = _ragged(served)
    uniq, code_of = (
        unique_codes(codes) if len(codes) else (np.empty(0, object), np.empty(0, np.intp))
    )
    out, has = _pair_max(
        _industry_base(list(uniq), list(values)), code_of, column, owner, len(codes)
    )
    out[~has] = round(GENERALIST_INDUSTRY * _TWELFTHS)
    return out


def region_pairs(
    regions: Sequence[str], served: Sequence[tuple[str, ...]], remote: NDArray[np.bool_]
) -> NDArray[np.uint8]:
    """Region level of pairs ``(regions[i], served[i], remote[i])``, shape ``(n,)``.

    Same values as :func:`region_table`, for a list of pairs.
    """
    values, column, owner = _ragged(served)
    uniq, code_of = (
        unique_codes(regions) if len(regions) else (np.empty(0, object), np.empty(0, np.intp))
    )
    out, has = _pair_max(
        _region_base(list(uniq), list(values)), code_of, column, owner, len(regions)
    )
    out[~has] = RegionLevel.ANYWHERE
    out[(out == RegionLevel.NOT_SERVED) & remote] = RegionLevel.REMOTE
    return out


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

    The summation order is fixed — text, plus the provider-only part (skill, rating), plus
    industry, plus region — and :func:`fit_plane` follows it, so blocked (matrix) and
    per-pair (vector) evaluation round identically: a candidate's fit never depends on how
    it was computed.
    """
    w = weights.normalised
    return (w[1] * text + (w[0] * skill + w[4] * rating)) + w[2] * industry + w[3] * region


def fit_plane(
    provider_part: NDArray[np.float64],
    text: NDArray[np.float64],
    industry: NDArray[np.uint8],
    region: NDArray[np.uint8],
    weights: Weights,
) -> NDArray[np.float64]:
    """:func:`combine` over a dense ``(m, b)`` chunk with few passes over memory.

    Parameters
    ----------
    provider_part : ndarray of float64, shape (b,)
        ``w_skill × skill + w_rating × rating`` of the block's providers.
    text : ndarray of float64, shape (m, b)
        Text similarities in [0, 1].
    industry, region : ndarray of uint8, shape (m, b)
        Stored industry twelfths and region levels (weighted through lookup tables, which
        round exactly like ``w × INDUSTRY_FIT[code]``).

    Returns
    -------
    ndarray of float64, shape (m, b)
        Bit-identical to ``combine`` on the same feature values.
    """
    w = weights.normalised
    fit = np.multiply(text, w[1])
    fit += provider_part
    fit += (w[2] * INDUSTRY_FIT)[industry]
    fit += (w[3] * REGION_FIT)[region]
    return fit
