"""The optimality certificate: a proven upper bound from any non-negative provider prices.

For the capacitated assignment LP (see :mod:`matching.solving.solve`), weak duality says
that for *any* prices ``p >= 0`` the dual objective
``sum_i max(0, max_j g_ij - p_j) + sum_j capacity[j] p_j`` is at least the optimum. So
``dual_bound(p) - objective`` is a gap that holds whatever produced ``p`` (auction, exact
hand-off, HiGHS): the solver's bookkeeping is never trusted, only this arithmetic.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

__all__ = ["dual_bound"]


def dual_bound(
    csr: sp.csr_array, capacity: NDArray[np.int64], prices: NDArray[np.float64]
) -> float:
    """Dual objective ``sum_i max(0, max_j g_ij - p_j) + capacity . p`` for ``p >= 0``.

    Weak duality makes this an upper bound on the optimum for any non-negative prices;
    the request duals ``u_i`` are the smallest feasible ones given ``p``.
    """
    p = np.maximum(prices, 0.0)
    net = csr.data - p[csr.indices]
    nonempty = np.flatnonzero(np.diff(csr.indptr))
    u = np.maximum.reduceat(net, csr.indptr[nonempty]) if net.size else net
    return float(np.maximum(u, 0.0).sum() + capacity.astype(np.float64) @ p)
