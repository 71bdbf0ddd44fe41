"""The solver's memory cuts change no answer.

Bounded-memory versions of three passes over every candidate pair (issue 9, item 5: peak
RSS at 200k x 100k x 30): the candidate lists are rebuilt in chunks, pair gains are
looked up by binary search within rows, and the global price update fills its graph in
place. Each is checked here against a plain reference, and whole solves with tiny chunks
against ``milp`` with the certificate recomputed (``tests/matching/test_solve_shapes.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from matching.solving import _market
from matching.solving import solve as solve_module
from tests.matching.test_solve_shapes import Case, check, families


@st.composite
def sparse_and_queries(
    draw: st.DrawFn,
) -> tuple[sp.csr_array, np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 12))
    m = draw(st.integers(1, 12))
    mask = np.array(draw(st.lists(st.booleans(), min_size=n * m, max_size=n * m)))
    gains = np.arange(1, n * m + 1, dtype=np.float64)  # distinct, so a wrong hit shows
    dense = np.where(mask.reshape(n, m), gains.reshape(n, m), 0.0)
    q = draw(st.integers(0, 30))
    rows = np.array(draw(st.lists(st.integers(0, n - 1), min_size=q, max_size=q)), np.int64)
    cols = np.array(draw(st.lists(st.integers(0, m - 1), min_size=q, max_size=q)), np.int64)
    return sp.csr_array(dense), rows, cols


@settings(max_examples=200, deadline=None)
@given(sparse_and_queries())
def test_lookup_is_the_dense_entry(case: tuple[sp.csr_array, np.ndarray, np.ndarray]) -> None:
    """Hits give the gain, misses (pairs that are no candidate) give 0."""
    csr, rows, cols = case
    got = solve_module._lookup(csr, rows, cols)
    assert np.array_equal(got, csr.toarray()[rows, cols])


@settings(max_examples=40, deadline=None)
@given(families)
def test_chunked_candidate_lists_equal_one_pass(case: Case) -> None:
    """Lists rebuilt in chunks of a few entries are the lists of one pass over all rows."""
    scores, capacity, _, _ = case
    csr = solve_module._as_scores(scores)
    assume(csr.nnz > 0)  # the solver never builds a market for an empty problem
    cap = np.minimum(capacity, np.bincount(csr.indices, minlength=csr.shape[1]))
    whole = _market.build(csr, cap)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_market, "RELIST_CHUNK", 8)
        chunked = _market.build(csr, cap)
    for name in ("gain", "prov", "gout", "listed"):
        assert np.array_equal(getattr(whole, name), getattr(chunked, name)), name


@settings(max_examples=40, deadline=None)
@given(families)
def test_solves_with_tiny_chunks_stay_exact(case: Case) -> None:
    """Every relist in small chunks: same optimum as milp, certificate recomputed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_market, "RELIST_CHUNK", 8)
        patch.setattr(solve_module, "_EXACT_FIRST_REQUESTS", -1)  # the auction's path
        check(case)
