"""Shape suite: our exact solver against OR-Tools ``SimpleMinCostFlow`` on the hard shapes.

Families (seeded ``numpy.random.Generator``; default gains 0.05 + 0.55 noise + 0.4 provider
quality so popular providers are contested):

* ``bigcap``    a few platforms with capacity 500-5,000 beside experts of capacity 1-5;
  each platform is a candidate of a third of the requests (K = 50);
* ``dense``     K = 200 candidates per request, capacity 1-5; ``dense1``: K = 100, capacity 1;
* ``equal``     every gain 1.0, total capacity = the number of requests (binding);
* ``distinct3`` three gain values, binding capacity, 1% of requests pinned, 2% of pairs
  forbidden;
* ``chain``     request i -> providers i and i+1, capacity 1, each request prefers i+1
  and the last one can only take the last provider: the optimum shifts the whole chain;
* ``surplus``   capacity 1-5, K = 30: the 200k x 100k case;
* ``--problems FILE.npz``: the product's own snapshots (``bench/dump_problem.py``).

Every (instance, solver, repetition) runs in a fresh subprocess, ours and OR-Tools
interleaved, so peak RSS is per solver and load on the shared machine hits both alike.
Two memory figures: "MB" is the child's whole peak (``ru_maxrss``: interpreter, libraries,
building the instance, solving); "solve MB" is the peak *during the solve* above the RSS
before it (the kernel's high-water mark ``VmHWM`` is reset through
``/proc/self/clear_refs`` just before the solver starts), the solver's own footprint; the table shows medians of ``--repeat`` runs (default 3), wall time and
process CPU time (the fairer figure when the machine is shared: both solvers are
single-threaded). OR-Tools needs
integer costs: gains are scaled by 1e9 and rounded, and both objectives are recomputed
from the float gains. "gap" is our certified relative gap (dual bound - objective).

Usage::

    .venv/bin/python bench/shapes.py                          # the whole suite
    .venv/bin/python bench/shapes.py --only bigcap-20k chain-50k --repeat 1
    .venv/bin/python bench/shapes.py --only none --problems /tmp/zhuqi-3505.npz
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from problem_file import load_problem

from matching.solving.solve import solve_assignment

Instance = dict[str, Any]
Ints = NDArray[np.int64]


def _pairs(rng: np.random.Generator, n_req: int, n_prov: int, k: int) -> tuple[Ints, Ints]:
    rows = np.repeat(np.arange(n_req, dtype=np.int64), k)
    cols = rng.integers(0, n_prov, rows.size)
    keys = np.unique(rows * n_prov + cols)
    return keys // n_prov, keys % n_prov


def _instance(rows: Ints, cols: Ints, gains: Any, shape: tuple[int, int], cap: Any) -> Instance:
    scores = sp.csr_array((np.asarray(gains, dtype=np.float64), (rows, cols)), shape=shape)
    return {"scores": scores, "capacity": np.asarray(cap, dtype=np.int64)}


def _quality_gains(rng: np.random.Generator, cols: Ints, n_prov: int) -> NDArray[np.float64]:
    quality = rng.random(n_prov)
    return 0.05 + 0.55 * rng.random(cols.size) + 0.4 * quality[cols]


def bigcap(n_req: int, n_prov: int, rng: np.random.Generator) -> Instance:
    rows, cols = _pairs(rng, n_req, n_prov, 50)
    cap = rng.integers(1, 6, n_prov)
    big = np.arange(6)  # platforms: providers 0-5
    cap[big] = [5000, 2000, 1000, 800, 500, 500]
    extra_r = np.flatnonzero(rng.random(n_req * big.size) < 1 / 3)
    rows = np.concatenate([rows, extra_r // big.size])
    cols = np.concatenate([cols, big[extra_r % big.size]])
    keys = np.unique(rows * n_prov + cols)
    rows, cols = keys // n_prov, keys % n_prov
    return _instance(rows, cols, _quality_gains(rng, cols, n_prov), (n_req, n_prov), cap)


def dense(
    n_req: int, n_prov: int, rng: np.random.Generator, k: int = 200, unit: bool = False
) -> Instance:
    rows, cols = _pairs(rng, n_req, n_prov, k)
    cap = np.ones(n_prov, dtype=np.int64) if unit else rng.integers(1, 6, n_prov)
    return _instance(rows, cols, _quality_gains(rng, cols, n_prov), (n_req, n_prov), cap)


def _binding_capacity(rng: np.random.Generator, n_req: int, n_prov: int) -> Ints:
    return rng.multinomial(n_req, np.full(n_prov, 1.0 / n_prov)).astype(np.int64)


def equal(n_req: int, n_prov: int, rng: np.random.Generator) -> Instance:
    rows, cols = _pairs(rng, n_req, n_prov, 30)
    cap = _binding_capacity(rng, n_req, n_prov)
    return _instance(rows, cols, np.ones(rows.size), (n_req, n_prov), cap)


def distinct3(n_req: int, n_prov: int, rng: np.random.Generator) -> Instance:
    rows, cols = _pairs(rng, n_req, n_prov, 30)
    cap = _binding_capacity(rng, n_req, n_prov)
    gains = np.array([0.3, 0.6, 0.9])[rng.integers(0, 3, rows.size)]
    out = _instance(rows, cols, gains, (n_req, n_prov), cap)
    pin_req = rng.choice(n_req, n_req // 100, replace=False)
    pin_prov = rng.integers(0, n_prov, pin_req.size)
    load = np.zeros(n_prov, dtype=np.int64)
    keep = np.ones(pin_req.size, dtype=bool)
    for k, j in enumerate(pin_prov.tolist()):  # pins never exceed capacity
        keep[k] = load[j] < cap[j]
        load[j] += keep[k]
    pinned = np.column_stack([pin_req[keep], pin_prov[keep]])
    ban = rng.random(rows.size) < 0.02
    ban &= ~np.isin(rows * n_prov + cols, pinned[:, 0] * n_prov + pinned[:, 1])
    out["pinned"] = pinned
    out["forbidden"] = np.column_stack([rows[ban], cols[ban]])
    return out


def chain(n_req: int, _n_prov: int, rng: np.random.Generator) -> Instance:
    i = np.arange(n_req, dtype=np.int64)
    rows = np.concatenate([i, i[:-1]])
    cols = np.concatenate([i, i[:-1] + 1])
    gains = np.concatenate([np.ones(n_req), 1.0 + 1e-3 * (1 + rng.random(n_req - 1))])
    gains[n_req - 1] = 2.0  # the last request's only candidate: the last provider
    return _instance(rows, cols, gains, (n_req, n_req), np.ones(n_req, dtype=np.int64))


def surplus(n_req: int, n_prov: int, rng: np.random.Generator) -> Instance:
    rows, cols = _pairs(rng, n_req, n_prov, 30)
    cap = rng.integers(1, 6, n_prov)
    return _instance(rows, cols, _quality_gains(rng, cols, n_prov), (n_req, n_prov), cap)


SUITE: dict[str, tuple[Callable[..., Instance], int, int, dict[str, Any]]] = {
    "bigcap-20k": (bigcap, 20_000, 15_000, {}),
    "bigcap-50k": (bigcap, 50_000, 40_000, {}),
    "dense200-10k": (dense, 10_000, 10_000, {}),
    "dense100-cap1-10k": (dense, 10_000, 10_000, {"k": 100, "unit": True}),
    "equal-50k": (equal, 50_000, 50_000, {}),
    "distinct3-pins-50k": (distinct3, 50_000, 50_000, {}),
    "chain-50k": (chain, 50_000, 50_000, {}),
    "surplus-200k": (surplus, 200_000, 100_000, {}),
}


def build(name: str, seed: int) -> Instance:
    if name.endswith(".npz"):
        return load_problem(Path(name))
    make, n_req, n_prov, kw = SUITE[name]
    return make(n_req, n_prov, np.random.default_rng(seed), **kw)


def _free_problem(inst: Instance) -> tuple[sp.coo_array, Ints, float]:
    """Pins and forbidden pairs applied by hand for OR-Tools: (open gains, capacity, pin gain)."""
    scores, cap = inst["scores"], inst["capacity"].copy()
    coo = sp.coo_array(scores)
    pinned = np.asarray(inst.get("pinned", np.empty((0, 2))), dtype=np.int64).reshape(-1, 2)
    banned = np.asarray(inst.get("forbidden", np.empty((0, 2))), dtype=np.int64).reshape(-1, 2)
    n_prov = scores.shape[1]
    key = coo.row.astype(np.int64) * n_prov + coo.col
    keep = ~np.isin(key, banned[:, 0] * n_prov + banned[:, 1]) & ~np.isin(coo.row, pinned[:, 0])
    pin_gain = float(coo.data[np.isin(key, pinned[:, 0] * n_prov + pinned[:, 1])].sum())
    cap -= np.bincount(pinned[:, 1], minlength=n_prov)
    free = sp.coo_array((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=scores.shape)
    return free, cap, pin_gain


def run_ours(inst: Instance) -> dict[str, Any]:
    cpu, start = time.process_time(), time.perf_counter()
    res = solve_assignment(
        inst["scores"],
        inst["capacity"],
        pinned=inst.get("pinned", ()),
        forbidden=inst.get("forbidden", ()),
    )
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"seconds": seconds, "cpu": cpu, "objective": res.objective, "gap": res.gap,
            "method": res.method}  # fmt: skip


def run_ortools(inst: Instance) -> dict[str, Any]:
    from ortools.graph.python import min_cost_flow  # bench-only peer

    cpu, start = time.process_time(), time.perf_counter()
    coo, capacity, pin_gain = _free_problem(inst)
    n_req, n_prov = coo.shape
    sink = n_req + n_prov
    req = np.arange(n_req, dtype=np.int32)
    prov = np.arange(n_prov, dtype=np.int32)
    tails = np.concatenate([coo.row.astype(np.int32), req, n_req + prov])
    heads = np.concatenate(
        [n_req + coo.col.astype(np.int32), np.full(n_req + n_prov, sink, dtype=np.int32)]
    )
    caps = np.concatenate([np.ones(coo.nnz + n_req, dtype=np.int64), capacity])
    costs = np.concatenate(
        [-np.rint(coo.data * 1e9).astype(np.int64), np.zeros(n_req + n_prov, dtype=np.int64)]
    )
    mcf = min_cost_flow.SimpleMinCostFlow()
    mcf.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    supplies = np.concatenate([np.ones(n_req, dtype=np.int64), np.zeros(n_prov, dtype=np.int64)])
    mcf.set_nodes_supplies(np.arange(sink + 1, dtype=np.int32), np.append(supplies, -n_req))
    status = mcf.solve()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    flows = mcf.flows(np.arange(coo.nnz, dtype=np.int32))
    return {
        "seconds": seconds,
        "cpu": cpu,
        "objective": float(coo.data[flows > 0].sum()) + pin_gain,
        "status": str(status),
    }


def _status_mb(key: str) -> float:
    """A ``kB`` line of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MB; 0 off Linux."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak() -> None:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def child(name: str, solver: str, seed: int) -> None:
    """Subprocess entry: build the instance, run one solver once, print a JSON line."""
    inst = build(name, seed)
    before = _status_mb("VmRSS")
    _reset_peak()
    out = run_ours(inst) if solver == "ours" else run_ortools(inst)
    out["solve_mb"] = max(_status_mb("VmHWM") - before, 0.0)
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["shape"] = list(inst["scores"].shape)
    out["nnz"] = int(inst["scores"].nnz)
    out["slots"] = int(inst["capacity"].sum())
    print(json.dumps(out))


def spawn(name: str, solver: str, seed: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", name, solver, str(seed)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    measured: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return measured


def measure(name: str, seed: int, repeat: int) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "ortools": []}
    for _ in range(repeat):
        for solver in runs:
            runs[solver].append(spawn(name, solver, seed))
    ours, ort = runs["ours"], runs["ortools"]
    med = {s: statistics.median(r["seconds"] for r in runs[s]) for s in runs}
    cpu = {s: statistics.median(r["cpu"] for r in runs[s]) for s in runs}
    mb = {s: statistics.median(r["peak_mb"] for r in runs[s]) for s in runs}
    solve_mb = {s: statistics.median(r["solve_mb"] for r in runs[s]) for s in runs}
    diff = max(abs(o["objective"] - t["objective"]) for o in ours for t in ort)
    return {
        "name": Path(name).stem if name.endswith(".npz") else name,
        "shape": "x".join(map(str, ours[0]["shape"])),
        "nnz": ours[0]["nnz"],
        "slots": ours[0]["slots"],
        "ours": med["ours"],
        "ortools": med["ortools"],
        "ratio": med["ours"] / med["ortools"],
        "ours_cpu": cpu["ours"],
        "ort_cpu": cpu["ortools"],
        "cpu_ratio": cpu["ours"] / cpu["ortools"],
        "gap": max(o["gap"] for o in ours),
        "rel_diff": diff / max(1.0, abs(ort[0]["objective"])),
        "ours_mb": mb["ours"],
        "ort_mb": mb["ortools"],
        "ours_solve_mb": solve_mb["ours"],
        "ort_solve_mb": solve_mb["ortools"],
        "method": ",".join(sorted({o["method"] for o in ours})),
    }


HEADER = (
    f"| {'instance':<20} | {'requests x providers':>20} | {'pairs':>9} | {'slots':>7} | "
    f"{'ours s':>7} | {'OR-Tools s':>10} | {'ratio':>5} | {'ours cpu':>8} | {'ORT cpu':>7} | "
    f"{'cpu ratio':>9} | {'gap':>7} | {'|obj diff|':>10} | "
    f"{'ours MB':>7} | {'ORT MB':>6} | {'ours solve MB':>13} | {'ORT solve MB':>12} | method |"
)


def row(r: dict[str, Any]) -> str:
    return (
        f"| {r['name']:<20} | {r['shape']:>20} | {r['nnz']:>9} | {r['slots']:>7} | "
        f"{r['ours']:>7.2f} | {r['ortools']:>10.2f} | {r['ratio']:>5.2f} | "
        f"{r['ours_cpu']:>8.2f} | {r['ort_cpu']:>7.2f} | {r['cpu_ratio']:>9.2f} | {r['gap']:>7.0e} | "
        f"{r['rel_diff']:>10.0e} | {r['ours_mb']:>7.0f} | {r['ort_mb']:>6.0f} | "
        f"{r['ours_solve_mb']:>13.0f} | {r['ort_solve_mb']:>12.0f} | {r['method']} |"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=list(SUITE), help="suite names, or none")
    parser.add_argument("--problems", nargs="*", default=[], help="snapshot .npz files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="fresh runs per solver (median)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    return parser


def main() -> None:
    args = build_parser().parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    names = [n for n in args.only if n != "none"] + list(args.problems)
    unknown = [n for n in names if n not in SUITE and not n.endswith(".npz")]
    if unknown:
        build_parser().error(f"unknown instances {unknown}; choose from {list(SUITE)}")
    print(HEADER)
    print("|" + "|".join("-" * (len(c) + 2) for c in HEADER.strip("| ").split(" | ")) + "|")
    rows = []
    for name in names:
        rows.append(measure(name, args.seed, args.repeat))
        print(row(rows[-1]), flush=True)
    for key in ("ratio", "cpu_ratio"):
        ratios = [r[key] for r in rows]
        worst = rows[ratios.index(max(ratios))]["name"]
        print(f"{key}: median {statistics.median(ratios):.2f}, worst {max(ratios):.2f} ({worst})")
    print(f"worst certified gap {max(r['gap'] for r in rows):.1e}")
    for key in ("mb", "solve_mb"):
        over = [r["name"] for r in rows if r[f"ours_{key}"] > r[f"ort_{key}"]]
        print(f"peak {key.replace('_', ' ')} above OR-Tools' on: {', '.join(over) or 'none'}")


if __name__ == "__main__":
    main()
