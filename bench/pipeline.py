"""Benchmark ``matching.match`` end to end against a floor, and ``rematch`` against ``match``.

For each size (seeded :func:`synthetic.make_problem`), a fresh subprocess (so that peak RSS,
``ru_maxrss``, is per size) runs:

1. ``match(problem)`` — seconds per stage and in total, peak RSS after it;
2. the **floor**: the least work any pipeline of this design must do — over the *same*
   candidate blocks (:func:`matching.scoring.blocks.blocks`: category, provider-level rules,
   province) and the same chunking, one sparse TF-IDF similarity product per chunk, its
   top-K per request, then ``solve_assignment`` on those similarity scores. TF-IDF
   vectors and block set-up (transposed provider vectors) are given to the floor for
   free: only products, top-K and the solve are timed, so it is a lower bound.

Targets: ``match`` <= 3 × floor; peak RSS at 100k requests × 50k providers <= 4 GB.

The rematch run (10k × 10k) declines 1% of the matched pairs and times
``rematch(previous, problem, declined=...)`` against a full ``match`` of the same changed
problem, checking that rematch's objective is within the full optimum's reach.

Usage::

    .venv/bin/python bench/pipeline.py                          # 10k, 50k, 100k + rematch
    .venv/bin/python bench/pipeline.py --sizes 10k --no-rematch
    .venv/bin/python bench/pipeline.py --sizes 20000x5000       # any REQUESTSxPROVIDERS
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import make_problem

import matching
from matching.encode import Encoded, encode
from matching.scoring.blocks import blocks, chunks
from matching.scoring.text import fit_text_model

SIZES = {"10k": (10_000, 10_000), "50k": (50_000, 50_000), "100k": (100_000, 50_000)}
TARGET_RATIO = 3.0
TARGET_RSS_GB = 4.0


def _parse_size(text: str) -> tuple[int, int]:
    if text in SIZES:
        return SIZES[text]
    n_req, n_prov = text.lower().split("x")
    return int(n_req), int(n_prov)


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # kB on Linux


def _floor(enc: Encoded, weights: matching.Weights) -> dict[str, float]:
    """Per block and chunk: TF-IDF product, top-K, then one solve on those similarities."""
    model = fit_text_model(enc.prov_text)
    text = model.transform(enc.req_text)
    removed = np.zeros((enc.n_req, 7), dtype=np.int64)
    products = products_cpu = 0.0
    rows_out, cols_out, vals_out = [], [], []
    for block in blocks(enc, model, np.ones(enc.n_req, dtype=bool), weights, removed):
        start, start_cpu = time.perf_counter(), time.process_time()
        for lo, hi in chunks(len(block.rows), len(block.provs)):
            sims = (text[block.rows[lo:hi]] @ block.text_t).toarray()
            k = min(weights.top_k, sims.shape[1])
            if k == 0:
                continue
            best = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            rows_out.append(np.repeat(block.rows[lo:hi], k))
            cols_out.append(block.provs[best].ravel())
            vals_out.append(np.take_along_axis(sims, best, axis=1).ravel())
        products += time.perf_counter() - start
        products_cpu += time.process_time() - start_cpu
    start, start_cpu = time.perf_counter(), time.process_time()
    gains = np.concatenate(vals_out) + 1e-6  # the solver wants gains > 0
    pairs = (np.concatenate(rows_out), np.concatenate(cols_out))
    scores = sp.csr_array((gains, pairs), shape=(enc.n_req, enc.n_prov))
    result = matching.solve_assignment(scores, np.maximum(enc.free, 0))
    solve, solve_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return {
        "products": products,
        "solve": solve,
        "total": products + solve,
        "products_cpu": products_cpu,
        "cpu": products_cpu + solve_cpu,
        "pairs": float(scores.nnz),
        "matched": float((result.provider_of >= 0).sum()),
    }


def run_size(n_req: int, n_prov: int, seed: int) -> dict[str, Any]:
    """One size, in this process: full match, then the floor."""
    problem = make_problem(n_req, n_prov, seed)
    base_gb = _peak_gb()
    start, start_cpu = time.perf_counter(), time.process_time()
    result = matching.match(problem)
    seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    peak_gb = _peak_gb()
    stats = result.stats
    floor = _floor(encode(problem), matching.Weights())
    return {
        "size": f"{n_req}x{n_prov}",
        "match_seconds": seconds,
        "stages": dict(stats.seconds),
        "floor": floor,
        "ratio": seconds / floor["total"],
        "match_cpu": cpu,
        "cpu_ratio": cpu / floor["cpu"],
        "peak_gb": peak_gb,
        "problem_gb": base_gb,
        "candidate_pairs": stats.candidate_pairs,
        "matched": stats.matched,
        "unmatched": stats.unmatched,
        "gap": stats.gap,
        "objective": stats.objective,
    }


def run_rematch(n_req: int, n_prov: int, seed: int, share: float) -> dict[str, Any]:
    """Decline ``share`` of the matched pairs; rematch vs a full match of the same problem."""
    problem = make_problem(n_req, n_prov, seed)
    first = matching.match(problem)
    rng = np.random.default_rng(seed + 1)
    picks = rng.choice(len(first.pairs), size=max(1, int(share * n_req)), replace=False)
    declined = [first.pairs[i] for i in sorted(picks.tolist())]
    start = time.perf_counter()
    again = matching.rematch(first, problem, declined=declined)
    incremental = time.perf_counter() - start
    changed = problem.replace(
        exclusions=(*problem.exclusions, *(matching.Exclusion(p, request=r) for r, p in declined))
    )
    start = time.perf_counter()
    full = matching.match(changed)
    full_seconds = time.perf_counter() - start
    return {
        "size": f"{n_req}x{n_prov}",
        "declined": len(declined),
        "rematch_seconds": incremental,
        "full_seconds": full_seconds,
        "speedup": full_seconds / incremental,
        "rematch_stages": dict(again.stats.seconds),
        "open_requests": again.stats.open_requests,
        "rematch_objective": again.objective,
        "full_objective": full.objective,
        "kept_pairs": again.stats.pinned,
    }


def _child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"], "args": args}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _print_size(row: dict[str, Any]) -> None:
    if "error" in row:
        print(f"{row['args']}: FAILED {row['error']}")
        return
    stages = " ".join(f"{k}={v:.2f}" for k, v in row["stages"].items() if k != "total")
    floor = row["floor"]
    # verdict on CPU time: wall time on a shared machine swings with other load
    ok_ratio = "ok" if row["cpu_ratio"] <= TARGET_RATIO else "OVER"
    ok_rss = "ok" if row["peak_gb"] <= TARGET_RSS_GB else "OVER"
    print(
        f"{row['size']:>13}  match {row['match_seconds']:7.2f}s (cpu {row['match_cpu']:.2f}s)  [{stages}]"
    )
    print(
        f"{'':>13}  floor {floor['total']:7.2f}s  [products={floor['products']:.2f} "
        f"solve={floor['solve']:.2f}] (cpu {floor['cpu']:.2f}s)  ratio {row['ratio']:.2f}, "
        f"cpu ratio {row['cpu_ratio']:.2f} (target <= {TARGET_RATIO}: {ok_ratio})"
    )
    own = row["match_seconds"] - row["stages"].get("solve", 0.0)
    print(
        f"{'':>13}  without the solver: match {own:.2f}s vs floor products "
        f"{floor['products']:.2f}s = {own / floor['products']:.2f}x"
    )
    print(
        f"{'':>13}  peak RSS {row['peak_gb']:.2f} GB (target <= {TARGET_RSS_GB:.0f} GB: {ok_rss}; "
        f"problem alone {row['problem_gb']:.2f} GB)  "
        f"pairs {row['candidate_pairs']}  matched {row['matched']}  unmatched {row['unmatched']}  "
        f"gap {row['gap']:.1e}"
    )


def _print_rematch(row: dict[str, Any]) -> None:
    if "error" in row:
        print(f"rematch: FAILED {row['error']}")
        return
    print(
        f"rematch {row['size']}: {row['declined']} declined -> {row['open_requests']} open, "
        f"{row['kept_pairs']} kept; rematch {row['rematch_seconds']:.2f}s vs full match "
        f"{row['full_seconds']:.2f}s ({row['speedup']:.1f}x faster)"
    )
    stages = " ".join(f"{k}={v:.2f}" for k, v in row["rematch_stages"].items() if k != "total")
    print(
        f"{'':>8}stages [{stages}]; objective {row['rematch_objective']:.2f} "
        f"(full re-solve, nothing fixed: {row['full_objective']:.2f})"
    )


def sizes_of(words: list[str]) -> list[str]:
    """``--sizes 10k 50k`` and ``--sizes 10k,50k`` mean the same; each size checked up front."""
    sizes = [part for word in words for part in word.split(",") if part]
    for size in sizes:
        try:
            _parse_size(size)
        except ValueError as exc:
            raise SystemExit(f"--sizes: {size!r} is not 10k, 50k, 100k or RxP") from exc
    return sizes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=["10k,50k,100k"],
        help="10k, 50k, 100k or RxP; space- or comma-separated (both as the README writes them)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-rematch", action="store_true")
    parser.add_argument("--rematch-share", type=float, default=0.01)
    parser.add_argument(
        "--child", nargs=3, metavar=("KIND", "SIZE", "SEED"), help=argparse.SUPPRESS
    )
    return parser


def main() -> None:
    args = build_parser().parse_args()
    if args.child:
        kind, size, seed = args.child
        n_req, n_prov = _parse_size(size)
        row = (
            run_size(n_req, n_prov, int(seed))
            if kind == "match"
            else run_rematch(n_req, n_prov, int(seed), args.rematch_share)
        )
        print(json.dumps(row))
        return
    print(f"matching pipeline benchmark (seed {args.seed}; each size in its own process)")
    for size in sizes_of(args.sizes):
        _print_size(_child(["--child", "match", size, str(args.seed)]))
    if not args.no_rematch:
        _print_rematch(
            _child(
                [
                    "--child",
                    "rematch",
                    "10k",
                    str(args.seed),
                    "--rematch-share",
                    str(args.rematch_share),
                ]
            )
        )


if __name__ == "__main__":
    main()
