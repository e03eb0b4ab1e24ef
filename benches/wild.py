#!/usr/bin/env python3
"""lrpc on the models from the wild (fixtures/wild/, made by fixtures/wild.py): import, the
forward pass against onnxruntime's output, and explain with epsilon, epsilon-plus-flat and
gradient. Prints a Markdown table (docs/coverage.md holds the last one).

    ../venv-wild/bin/python benches/wild.py target/release/lrpc [--const silero_vad_*:sr=16000]

Inputs are given by name (--input NAME=FILE for every input); the sample rate input of the
silero models is fixed with --const sr (its If branches depend on it).
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WILD = ROOT / "fixtures" / "wild"


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    err = (p.stderr.strip().splitlines() or [""])[-1]
    return p.returncode, err


def main():
    lrpc = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target/release/lrpc")
    tmp = Path(tempfile.mkdtemp())
    rows = []
    for meta_path in sorted(WILD.glob("*.json")):
        meta = json.loads(meta_path.read_text())
        stem = meta_path.stem
        model = WILD / f"{stem}.onnx"
        if not model.exists():
            rows.append((stem, "missing (run fixtures/wild.py)", "", ""))
            continue
        args = []
        for i, inp in enumerate(meta["inputs"]):
            data = WILD / stem / f"in_{i}.npy"
            if inp["name"] == "sr":
                sr = tmp / "sr.npy"
                np.save(sr, np.load(data))
                args += ["--const", f"sr={sr}"]
            else:
                args += ["--input", f"{inp['name']}={data}"]
        out = tmp / f"{stem}.npy"
        code, err = run([lrpc, "run", str(model), *args, "--output", str(out)])
        if code != 0:
            rows.append((stem, "refused", err, ""))
            continue
        got, want = np.load(out), np.load(WILD / stem / "out_0.npy")
        rel = float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))
        forward = f"matches ({rel:.1e})" if rel <= 1e-4 else f"differs ({rel:.1e})"
        explained = []
        for method in ["epsilon", "epsilon-plus-flat", "gradient"]:
            code, err = run([lrpc, "explain", str(model), *args, "--method", method])
            explained.append("ok" if code == 0 else err)
        ok = all(e == "ok" for e in explained)
        rows.append((stem, forward, "", "all three" if ok else "; ".join(sorted(set(e for e in explained if e != "ok")))))
    print("| model | forward vs onnxruntime | refusal | explain (epsilon, epsilon-plus-flat, gradient) |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(c.replace("|", "/") for c in r) + " |")


if __name__ == "__main__":
    main()
