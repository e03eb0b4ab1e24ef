"""Tokens per second of a BiLSTM explanation (Arras et al.'s epsilon rule): lrpc against the
numpy implementation of the same rule that fixtures/lstm_ref.py checks lrpc with.

    /work/venv/bin/python benches/text.py target/release/lrpc [--bias-factor 0] [--batch 64]

Both explain the 200 documents of fixtures/text/test_ids.npy (16 tokens each) for their labels
with fixtures/text_lstm/model.onnx. numpy: one document at a time in float64 (the reference's
own loop, as LRP_for_LSTM runs it), wall time over all documents. lrpc: `lrpc bench --json` on
the same model at the given batch (median explain time of a batch of random ids, compiled
code), plus a whole-process `lrpc words` over the 200 documents (import, compile and explain).
The numbers are ratios on a shared machine: run both in one go, as this script does.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))
import lstm_ref  # noqa: E402  (the fixture's numpy rule)


def numpy_tokens_per_second(model: Path, ids: np.ndarray, labels: np.ndarray, eps: float, bf: float) -> float:
    w = lstm_ref.LSTMWeights(onnx.load(str(model)))
    start = time.perf_counter()
    for row, target in zip(ids, labels):
        f = lstm_ref.lstm_forward(w, row)
        lstm_ref.lstm_lrp(w, f, int(target), eps, bf)
    return ids.size / (time.perf_counter() - start)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("lrpc")
    ap.add_argument("--bias-factor", type=float, default=0.0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epsilon", type=float, default=1e-3)
    a = ap.parse_args()
    model = ROOT / "fixtures/text_lstm/model.onnx"
    ids = np.load(ROOT / "fixtures/text/test_ids.npy")
    labels = np.load(ROOT / "fixtures/text/test_labels.npy")
    method = ["--method", "epsilon", "--epsilon", str(a.epsilon), "--bias-factor", str(a.bias_factor)]
    numpy_tps = numpy_tokens_per_second(model, ids, labels, a.epsilon, a.bias_factor)
    out = subprocess.run([a.lrpc, "bench", str(model), "--batch", str(a.batch), "--json"] + method,
                         capture_output=True, text=True, check=True).stdout
    bench = json.loads(out)
    seq = ids.shape[1]
    lrpc_tps = a.batch * seq / bench["explain_s"]
    start = time.perf_counter()
    subprocess.run([a.lrpc, "words", str(model), "--data", str(ROOT / "fixtures/text/test_ids.npy"),
                    "--vocab", str(ROOT / "fixtures/text/vocab.json"), "--class", "1", "--json"] + method,
                   capture_output=True, check=True)
    words_s = time.perf_counter() - start
    print(json.dumps({
        "documents": int(ids.shape[0]), "tokens_per_document": int(seq), "bias_factor": a.bias_factor,
        "numpy_tokens_per_s": round(numpy_tps), "lrpc_batch": a.batch,
        "lrpc_tokens_per_s": round(lrpc_tps), "ratio": round(lrpc_tps / numpy_tps, 1),
        "lrpc_words_whole_process_s": round(words_s, 3),
        "lrpc_bench": {k: bench[k] for k in ("compile_s", "explain_s", "threads") if k in bench},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
