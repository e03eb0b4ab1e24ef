"""`lrpc evaluate` against the Python reference of the same protocol (fixtures/aopc_ref.py:
torch + zennit heatmaps, numpy perturbation, onnxruntime scoring batched 4096 rows at a time),
on the same machine, in one run: agreement (each method's AOPC within 2 standard errors) and
samples per second.

    /work/venv/bin/python benches/evaluate.py target/release/lrpc [--runs 3]

Python: the reference's `run` (its own wall clock of the whole protocol, not interpreter
start-up), 1 thread as it pins itself. lrpc: the whole process (import, compilation of every
explainer, heatmaps, perturbed forward passes), 2 threads and 1 thread. Best of --runs each.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))
import aopc_ref  # noqa: E402

METHODS = aopc_ref.METHODS
CONFIGS = [
    ("digits P2 L16", "fixtures/digits/model.onnx", "fixtures/digits/data.npy", "fixtures/digits/labels.npy", 2, 16, "uniform"),
    ("digits P1 L64", "fixtures/digits/model.onnx", "fixtures/digits/data.npy", "fixtures/digits/labels.npy", 1, 64, "uniform"),
    ("shapes P4 L64", "fixtures/shapes/model.onnx", "fixtures/shapes_data/data.npy", "fixtures/shapes_data/labels.npy", 4, 64, "uniform"),
    ("shapes P4 L64 mean", "fixtures/shapes/model.onnx", "fixtures/shapes_data/data.npy", "fixtures/shapes_data/labels.npy", 4, 64, "mean"),
]


def lrpc_run(lrpc: str, model, data, labels, patch, steps, perturb, threads: int) -> tuple:
    cmd = [lrpc, "evaluate", str(ROOT / model), "--data", str(ROOT / data), "--labels", str(ROOT / labels),
           "--methods", ",".join(METHODS), "--patch", str(patch), "--steps", str(steps), "--perturb", perturb,
           "--target", "label", "--correct-only", "--seed", str(aopc_ref.SEED), "--json", "--quiet",
           "--threads", str(threads)]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - start, json.loads(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("lrpc")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    rows = []
    for name, model, data, labels, patch, steps, perturb in CONFIGS:
        py = []
        for _ in range(a.runs):
            r = aopc_ref.run(ROOT / model, ROOT / data, ROOT / labels, patch, steps, "morf", perturb, "logit",
                             "label", True, METHODS, aopc_ref.SEED, None)
            py.append(r["_seconds"])
        ours = {t: min(lrpc_run(a.lrpc, model, data, labels, patch, steps, perturb, t)[0] for _ in range(a.runs))
                for t in (2, 1)}
        _, got = lrpc_run(a.lrpc, model, data, labels, patch, steps, perturb, 2)
        ref = {m["method"]: m for m in r["methods"]}
        worst = max(abs(m["aopc"] - ref[m["method"]]["aopc"]) / ref[m["method"]]["se"] for m in got["methods"])
        n = r["n"]
        rows.append({"config": name, "n": n, "python_s": min(py), "lrpc_2t_s": ours[2], "lrpc_1t_s": ours[1],
                     "python_sps": n / min(py), "lrpc_2t_sps": n / ours[2], "lrpc_1t_sps": n / ours[1],
                     "largest_aopc_gap_in_se": worst})
        print(json.dumps(rows[-1]), flush=True)
    print()
    print("| data | n | Python s (samples/s) | lrpc 2 threads s (samples/s) | lrpc 1 thread s (samples/s) | largest |AOPC gap| / s.e. |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['n']} | {r['python_s']:.2f} ({r['python_sps']:.0f}) | {r['lrpc_2t_s']:.2f} "
              f"({r['lrpc_2t_sps']:.0f}) | {r['lrpc_1t_s']:.2f} ({r['lrpc_1t_sps']:.0f}) | {r['largest_aopc_gap_in_se']:.2g} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
