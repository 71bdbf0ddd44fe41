"""Exact fallback: the assignment LP solved by HiGHS through :func:`scipy.optimize.linprog`.

The constraint matrix of the capacitated assignment LP is the incidence matrix of a
bipartite graph, hence totally unimodular: every vertex of the polytope is integral, and
HiGHS (dual simplex, or interior point followed by crossover) returns a vertex. It is slow
(seconds at 10k x 10k) but polynomial and independent of the auction, so it is the
last-resort path when the auction cannot certify its answer.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.optimize import linprog

from matching.errors import MatchingError

__all__ = ["solve_lp"]


def solve_lp(
    csr: sp.csr_array, capacity: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Solve ``max sum g_ij x_ij`` s.t. rows <= 1, column j <= capacity[j], 0 <= x <= 1.

    Parameters
    ----------
    csr : csr_array, shape (n_requests, n_providers)
        Canonical CSR; explicit entries are candidate pairs with gain > 0.
    capacity : ndarray of int64, shape (n_providers,)

    Returns
    -------
    provider_of : ndarray of int64, shape (n_requests,)
        Chosen provider per request, -1 when unmatched.
    prices : ndarray of float64, shape (n_providers,)
        Provider duals ``p_j >= 0`` read from HiGHS' marginals (a certificate input).
    """
    n_req, n_prov = csr.shape
    provider_of = np.full(n_req, -1, dtype=np.int64)
    if csr.nnz == 0:
        return provider_of, np.zeros(n_prov)
    rows = np.repeat(np.arange(n_req), np.diff(csr.indptr))
    cols = csr.indices.astype(np.int64)
    edges = np.arange(csr.nnz)
    a_ub = sp.vstack(
        [
            sp.csr_array((np.ones(csr.nnz), (rows, edges)), shape=(n_req, csr.nnz)),
            sp.csr_array((np.ones(csr.nnz), (cols, edges)), shape=(n_prov, csr.nnz)),
        ],
        format="csr",
    )
    b_ub = np.concatenate([np.ones(n_req), capacity.astype(np.float64)])
    # HiGHS takes a sparse A_ub (scipy documents it; dense would be (n + m) x nnz), but
    # scipy-stubs 1.17 types A_ub as dense only: the one ignore for a stub gap
    res = linprog(  # type: ignore[call-overload]
        -csr.data,
        A_ub=a_ub,
        b_ub=b_ub,
        bounds=(0.0, 1.0),
        method="highs-ds",
        options={"dual_feasibility_tolerance": 1e-10, "primal_feasibility_tolerance": 1e-10},
    )
    if res.status != 0:  # the LP is always feasible (x = 0) and bounded (0 <= x <= 1)
        raise MatchingError(f"HiGHS failed on the assignment LP: {res.message}")
    chosen = res.x > 0.5
    provider_of[rows[chosen]] = cols[chosen]
    prices = np.maximum(-np.asarray(res.ineqlin.marginals)[n_req:], 0.0)
    return provider_of, prices
