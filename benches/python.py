"""The Python package's cost per call against the Rust API, and Ray Data's throughput with one
and two actors against a plain loop, on one model (ResNet-50 from fixtures/zoo by default).

    target/pyenv/bin/python benches/python.py target/release/lrpc [fixtures/zoo/resnet50/model.onnx]
        [--method epsilon] [--threads 2] [--rounds 5] [--rows 64]

The package must be built with --release for this (`cd python && maturin develop --release`
inside target/pyenv), as the command line is.

Overhead: the model is compiled once per batch size (1 and 8) into an artifact, which both
sides load. Rounds alternate a `lrpc bench ARTIFACT --json` run (the Rust API's median explain
time over its runs, in its own process) with as many `Explainer.explain` calls from Python on a
fixed input (their median); the ratio of the medians over all rounds is the Python cost.

Ray: `rows` random images explained at batch 8: a plain loop (one Explainer with every thread,
`explain` on the whole array), then `lrpc.ray.explain_dataset` on a local cluster of as many
CPUs as threads, with one actor of all CPUs, and with one actor per CPU (the artifact shipped
as the model, so compilation is outside every figure). Ray's figures are given whole (actor
start-up, shipping and scheduling included) and as the steady rate a longer run approaches
(runs of 8 and `rows` rows differenced).
Machines are shared and noisy: quote the ratios, from one run of this script.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import lrpc

ROOT = Path(__file__).resolve().parent.parent


def compile_artifact(cli: str, model: Path, method: str, batch: int, threads: int, out: Path) -> Path:
    subprocess.run([cli, "compile", str(model), "--method", method, "--batch", str(batch),
                    "--threads", str(threads), "-o", str(out)], check=True, capture_output=True)
    return out


def overhead(cli: str, artifact: Path, batch: int, threads: int, rounds: int, runs: int) -> dict:
    e = lrpc.Explainer(artifact, threads=threads)
    x = np.random.default_rng(0).normal(size=e.input_shape).astype(np.float32)
    e.explain(x)  # warm: pages mapped, arenas allocated
    rust, py = [], []
    for _ in range(rounds):
        out = subprocess.run([cli, "bench", str(artifact), "--threads", str(threads), "--runs", str(runs), "--json"],
                             check=True, capture_output=True, text=True).stdout
        rust.append(json.loads(out)["explain_s"])
        t = []
        for _ in range(runs):
            start = time.perf_counter()
            e.explain(x)
            t.append(time.perf_counter() - start)
        py.append(statistics.median(t))
    r, p = statistics.median(rust), statistics.median(py)
    return {"batch": batch, "rust_explain_s": r, "python_explain_s": p, "python_over_rust": p / r,
            "rust_rounds": rust, "python_rounds": py}


def ray_throughput(artifact: Path, threads: int, rows: int) -> dict:
    import ray

    from lrpc.ray import explain_dataset

    rng = np.random.default_rng(1)
    x = rng.normal(size=(rows, 3, 224, 224)).astype(np.float32)
    loop = lrpc.Explainer(artifact, threads=threads)
    loop.explain(x[:8])
    start = time.perf_counter()
    want = loop.explain(x)
    loop_s = time.perf_counter() - start
    ray.init(num_cpus=threads, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    out = {"rows": rows, "loop_s": loop_s, "loop_rows_per_s": rows / loop_s}
    try:
        for actors, cpus in ((1, threads), (threads, 1)):
            key = f"ray_{actors}x{cpus}"
            times = {}
            for n in (8, rows):
                # Blocks of one batch each, so every actor has work.
                ds = ray.data.from_numpy(x[:n]).repartition(max(1, n // 8)).materialize()
                start = time.perf_counter()
                got = explain_dataset(ds, artifact, column="data", batch_size=8, concurrency=actors,
                                      num_cpus=cpus).materialize()
                times[n] = time.perf_counter() - start
            rel = np.concatenate([b["relevance"] for b in got.iter_batches(batch_size=None, batch_format="numpy")])
            out[f"{key}_s"] = times[rows]
            out[f"{key}_rows_per_s"] = rows / times[rows]
            # What a longer run approaches: the rows beyond the first batch over the time
            # beyond a run of one batch (actor start-up and artifact shipping cancel).
            out[f"{key}_steady_rows_per_s"] = (rows - 8) / (times[rows] - times[8])
            out[f"{key}_fixed_s"] = times[8] - 8 / out[f"{key}_steady_rows_per_s"]
            out[f"{key}_max_rel_diff"] = float(np.abs(rel - want.relevance).max() / np.abs(want.relevance).max())
    finally:
        ray.shutdown()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("lrpc")
    ap.add_argument("model", nargs="?", default=str(ROOT / "fixtures/zoo/resnet50/model.onnx"))
    ap.add_argument("--method", default="epsilon")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rows", type=int, default=64)
    a = ap.parse_args()
    model = Path(a.model)
    report = {"model": str(model), "method": a.method, "threads": a.threads, "overhead": []}
    with tempfile.TemporaryDirectory() as d:
        arts = {b: compile_artifact(a.lrpc, model, a.method, b, a.threads, Path(d) / f"b{b}.lrpx") for b in (1, 8)}
        for b in (1, 8):
            report["overhead"].append(overhead(a.lrpc, arts[b], b, a.threads, a.rounds, a.runs))
        report["ray"] = ray_throughput(arts[8], a.threads, a.rows)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
