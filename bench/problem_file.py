"""Solver inputs as ``.npz`` files: written by ``dump_problem.py``, read by ``shapes.py``.

Kept apart from ``dump_problem.py`` so the benchmark children import numpy and scipy only
(their peak RSS is then the solver's, not the application's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp


def save_problem(path: Path, scores: sp.csr_array, capacity: Any, **pairs: Any) -> None:
    """One solver input as plain arrays (``bench/shapes.py`` reads them back)."""
    csr = sp.csr_array(scores)
    empty = np.empty((0, 2), dtype=np.int64)
    np.savez_compressed(
        path,
        data=csr.data,
        indices=csr.indices,
        indptr=csr.indptr,
        shape=np.asarray(csr.shape),
        capacity=np.asarray(capacity, dtype=np.int64),
        pinned=np.asarray(pairs.get("pinned", empty), dtype=np.int64).reshape(-1, 2),
        forbidden=np.asarray(pairs.get("forbidden", empty), dtype=np.int64).reshape(-1, 2),
    )


def load_problem(path: Path) -> dict[str, Any]:
    """Inverse of :func:`save_problem`: ``scores``, ``capacity``, ``pinned``, ``forbidden``."""
    with np.load(path) as z:
        n_rows, n_cols = (int(s) for s in z["shape"])
        scores = sp.csr_array((z["data"], z["indices"], z["indptr"]), shape=(n_rows, n_cols))
        return {
            "scores": scores,
            "capacity": z["capacity"],
            "pinned": z["pinned"],
            "forbidden": z["forbidden"],
        }
