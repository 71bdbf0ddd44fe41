"""Dump the exact solver's input of a seeded province run to an ``.npz`` file.

The product's own instances are the ones that matter: this seeds the demo data (same
seed, same data; skipped when already loaded), takes the snapshot a match run takes for
``--region`` (requests, providers, loads, pins), runs the matching pipeline on it and
records every call the pipeline makes to :func:`matching.solving.solve.solve_assignment` (one
per run: the candidate gains with fairness slots already expanded, and the capacity).
``bench/shapes.py --problems FILE...`` then times our solver and OR-Tools on them.

Usage::

    .venv/bin/python bench/dump_problem.py --enterprises 10000 --providers 10000 \\
        --region 3505 --out /tmp/zhuqi-3505.npz

The database defaults to a SQLite file next to the output, one per seed and size
(``--database-url`` to use another); seeding 10k enterprises takes ~30 s once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from problem_file import save_problem

import matching
import matching.assign
from app import migrate
from app.assignments import encode
from app.assignments.encode import Scope
from app.db import make_engine, make_session_factory
from app.match_runs.runner import _one_pin_per_request
from matching.solving.solve import Pairs, Scores, SolveResult, solve_assignment
from seed.load import load_demo


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", required=True, help="region prefix, e.g. 3505")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--enterprises", type=int, default=10_000)
    parser.add_argument("--providers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--weights", default="{}", help='JSON weights, e.g. {"fairness": 0.1}')
    parser.add_argument("--database-url", default="")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    db = args.out.parent / f"zhuqi-demo-{args.seed}-{args.enterprises}x{args.providers}.db"
    url = args.database_url or f"sqlite:///{db}"
    migrate.upgrade(url=url)
    factory = make_session_factory(make_engine(url))
    with factory() as session, session.begin():
        print(load_demo(session, enterprises=args.enterprises, providers=args.providers,
                        seed=args.seed), file=sys.stderr)  # fmt: skip
    with factory() as session, session.begin():
        scope = Scope(args.region)
        ids = [r.id for r, _ in session.execute(scope.statement()).all()]
        pins = _one_pin_per_request(session, encode.locked_pairs(session, ids))
        snap = encode.snapshot(session, scope, pinned=pins)
    calls: list[tuple[sp.csr_array, Any]] = []

    def record(
        scores: Scores, capacity: ArrayLike, *, pinned: Pairs = (), forbidden: Pairs = ()
    ) -> SolveResult:
        calls.append((sp.csr_array(scores), capacity))  # solve_open passes CSR: no copy
        return solve_assignment(scores, capacity, pinned=pinned, forbidden=forbidden)

    matching.assign.solve_assignment = record  # type: ignore[attr-defined]  # bench-only spy
    weights = matching.Weights(**json.loads(args.weights))
    result = matching.match(snap.problem, weights)
    for k, (scores, capacity) in enumerate(calls):
        path = args.out if len(calls) == 1 else args.out.with_stem(f"{args.out.stem}-{k}")
        save_problem(path, scores, capacity)
        print(f"{path}: {scores.shape[0]} x {scores.shape[1]}, {scores.nnz} candidate pairs, "
              f"capacity {int(np.sum(capacity))}")  # fmt: skip
    print(f"run: {result.stats}", file=sys.stderr)


if __name__ == "__main__":
    main()
