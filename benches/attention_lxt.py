#!/usr/bin/env python3
"""lrpc against LXT (AttnLRP, lxt 2.1) on a ViT and a BERT-style encoder, in one run.

    cargo build --release
    /work/venv/bin/python benches/attention_lxt.py [--batch 1,8] [--runs 5] [--rounds 3]

The models (random weights, seeded; exported once by this script to target/bench-attention/
with the TorchScript exporter, opset 17):

* vit: torchvision's VisionTransformer, 224x224 images, 16x16 patches, 6 layers, 6 heads,
  width 384, MLP 1536, 1000 classes (a six-layer ViT-S/16). LXT: its efficient mode as LXT's
  own ViT example runs it (`lxt.efficient.monkey_patch(vision_transformer)`: CP-LRP inside the
  attention, the identity on GELU, LayerNorm's rule), relevance = input x gradient. lrpc:
  `cp-lrp`, the same rules.
* bert: fixtures/attention.py's BERT-style encoder at vocabulary 1000, 128 tokens, width 256,
  4 heads, MLP 1024, 4 layers, 3 classes; attention mask and token types as inputs (all ones).
  LXT: its explicit rules (lxt.explicit.functional, as the fixture's reference uses them),
  relevance at the word embeddings. lrpc: `attn-lrp`.

Per model and batch, every configuration runs in a fresh child process (benches/peers.py's
run_child: its peak RSS is the child's ru_maxrss), 2 threads each: torch's forward (no_grad),
LXT's explanation (forward + backward), `lrpc bench --json` (forward and explanation).
--rounds interleaves LXT and lrpc (LXT, lrpc, LXT, lrpc, ...); the table gives each figure's
median over the rounds and the ratio's range. Agreement: at batch 1, the relevance of lrpc
(`lrpc explain`) against LXT's on the same input, as max |difference| / max |LXT|.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benches"))
sys.path.insert(0, str(ROOT / "fixtures"))
import peers  # noqa: E402

OUT = ROOT / "target" / "bench-attention"
LRPC = ROOT / "target" / "release" / "lrpc"
THREADS = 2
BERT = dict(vocab=1000, seq=128, d=256, h=4, hidden=1024, layers=4, classes=3)
VIT = dict(image_size=224, patch_size=16, num_layers=6, num_heads=6, hidden_dim=384, mlp_dim=1536)
METHOD = {"vit": "cp-lrp", "bert": "attn-lrp"}
LXT_MODE = {"vit": "efficient (CP-LRP in attention)", "bert": "explicit (AttnLRP)"}


def build(name: str, lrp: str | None = None):
    import torch

    torch.manual_seed(0)
    if name == "vit":
        from torchvision.models import vision_transformer

        model = vision_transformer.VisionTransformer(**VIT).eval()
        with torch.no_grad():  # torchvision initialises the head to zero: logits and relevance would be 0
            model.heads.head.weight.normal_(0.0, 0.05)
        return model
    import attention

    return attention.Bert(lrp=lrp, **BERT).eval()


def inputs(name: str, batch: int) -> dict:
    import numpy as np

    rng = np.random.default_rng(batch)
    if name == "vit":
        return {"x": rng.standard_normal((batch, 3, 224, 224)).astype(np.float32)}
    shape = (batch, BERT["seq"])
    return {"input_ids": rng.integers(0, BERT["vocab"], shape).astype(np.int64),
            "attention_mask": np.ones(shape, np.int64), "token_type_ids": np.ones(shape, np.int64)}


def export() -> None:
    """target/bench-attention/{vit,bert}.onnx and .pt (the weights the workers load)."""
    import torch

    OUT.mkdir(parents=True, exist_ok=True)
    for name in ("vit", "bert"):
        model = build(name)
        torch.save(model.state_dict(), OUT / f"{name}.pt")
        feeds = {k: torch.from_numpy(v) for k, v in inputs(name, 1).items()}
        torch.onnx.export(model, tuple(feeds.values()), OUT / f"{name}.onnx", dynamo=False, opset_version=17,
                          input_names=list(feeds), output_names=["logits"],
                          dynamic_axes={k: {0: "batch"} for k in feeds})


def worker(cfg: dict) -> dict:
    """One timed configuration in this (child) process: torch's forward or LXT's explanation."""
    import numpy as np
    import torch

    torch.set_num_threads(THREADS)
    name, batch = cfg["model"], cfg["batch"]
    rss0 = peers._rss_mb()
    if name == "vit" and cfg["tool"] == "lxt":
        from lxt.efficient import monkey_patch
        from torchvision.models import vision_transformer

        monkey_patch(vision_transformer, verbose=False)
    lrp = "attn" if name == "bert" and cfg["tool"] == "lxt" else None
    model = build(name, lrp)
    model.load_state_dict(torch.load(OUT / f"{name}.pt"))
    for p in model.parameters():
        p.requires_grad_(False)
    feeds = {k: torch.from_numpy(v) for k, v in inputs(name, batch).items()}
    keep = {}

    def forward():
        with torch.no_grad():
            model(*feeds.values())

    def explain():
        if name == "vit":
            x = feeds["x"].clone().requires_grad_(True)
            y = model(x)
            # Efficient mode: relevance is input x gradient, the output seeded with one-hot (its
            # relevance is then the logit itself).
            y.backward(torch.nn.functional.one_hot(y.argmax(1), y.shape[1]).float())
            keep["relevance"] = (x * x.grad).detach()
        else:
            emb = model.word(feeds["input_ids"]).detach().requires_grad_(True)
            y = model(*feeds.values(), embedded=emb)
            y.backward(torch.nn.functional.one_hot(y.argmax(1), y.shape[1]) * y)
            keep["relevance"] = emb.grad.detach()

    times = peers._time(forward if cfg["tool"] == "torch" else explain, cfg["runs"], 1)
    if cfg["tool"] == "lxt" and batch == 1:
        np.save(OUT / f"{name}_lxt_relevance.npy", keep["relevance"].numpy())
    return {"ok": True, "s": statistics.median(times), "rss_before_mb": rss0}


def run_worker(cfg: dict) -> dict:
    """worker(cfg) in a fresh process; its result with the child's peak RSS."""
    c = peers.run_child([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(cfg)], 3600)
    for line in c["stdout"].splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT "):]), maxrss_mb=c["maxrss_mb"])
    return {"ok": False, "error": f"exit {c['rc']}: {peers._last_line(c['stderr'])}"}


def run_lrpc_bench(name: str, batch: int, runs: int) -> dict:
    argv = [str(LRPC), "bench", str(OUT / f"{name}.onnx"), "--method", METHOD[name], "--batch", str(batch),
            "--runs", str(runs), "--threads", str(THREADS), "--json"]
    c = peers.run_child(argv, 3600)
    if c["rc"] != 0:
        return {"ok": False, "error": peers._last_line(c["stderr"])}
    js = json.loads(c["stdout"].strip().splitlines()[-1])
    return {"ok": True, "forward_s": js["forward_s"], "explain_s": js["explain_s"], "maxrss_mb": c["maxrss_mb"]}


def agreement(name: str) -> float | None:
    """max |lrpc - LXT| / max |LXT| at batch 1 (LXT's relevance saved by its worker)."""
    import numpy as np

    ref = OUT / f"{name}_lxt_relevance.npy"
    if not ref.exists():
        return None
    files = []
    for k, v in inputs(name, 1).items():
        np.save(OUT / f"{name}_{k}.npy", v)
        files.append(str(OUT / f"{name}_{k}.npy") if not files else f"{k}={OUT / f'{name}_{k}.npy'}")
    got = OUT / f"{name}_lrpc_relevance.npy"
    flag = "--output" if name == "vit" else "--output-embedding"
    cmd = [str(LRPC), "explain", str(OUT / f"{name}.onnx"), "--method", METHOD[name], "--target", "top", flag, str(got)]
    for f in files:
        cmd += ["--input", f]
    subprocess.run(cmd, check=True, capture_output=True)
    a, b = np.load(got), np.load(ref)
    return float(np.abs(a - b).max() / np.abs(b).max())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", default="1,8")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--worker")
    ap.add_argument("--export", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print("RESULT " + json.dumps(worker(json.loads(a.worker))), flush=True)
        return 0
    if a.export:
        export()
        return 0
    # In a child: a driver that imported torch would hand its peak RSS to every child it forks.
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--export"], check=True, capture_output=True)
    v = peers.versions()
    v["lxt"] = subprocess.run([sys.executable, "-c", "from importlib.metadata import version; print(version('lxt'))"],
                              capture_output=True, text=True).stdout.strip()
    print(json.dumps(v))
    rows = []
    for name in ("vit", "bert"):
        for batch in (int(b) for b in a.batch.split(",")):
            cfg = {"model": name, "batch": batch, "runs": a.runs}
            torch_fwd = run_worker(dict(cfg, tool="torch"))
            lxt, ours = [], []
            for _ in range(a.rounds):
                lxt.append(run_worker(dict(cfg, tool="lxt")))
                ours.append(run_lrpc_bench(name, batch, a.runs))
            bad = [r for r in [torch_fwd] + lxt + ours if not r.get("ok")]
            if bad:
                print(f"{name} batch {batch}: {bad[0].get('error')}", file=sys.stderr)
                return 1
            ratios = [x["s"] / y["explain_s"] for x, y in zip(lxt, ours)]
            med = statistics.median
            rows.append({
                "model": name, "batch": batch, "torch_forward_s": torch_fwd["s"],
                "lrpc_forward_s": med(r["forward_s"] for r in ours),
                "lxt_explain_s": med(r["s"] for r in lxt), "lrpc_explain_s": med(r["explain_s"] for r in ours),
                "ratio_median": med(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
                "lxt_rss_mb": med(r["maxrss_mb"] for r in lxt), "lrpc_rss_mb": med(r["maxrss_mb"] for r in ours),
                "lxt_rss_before_mb": lxt[0]["rss_before_mb"],
            })
            print(json.dumps(rows[-1]), flush=True)
    agree = {name: agreement(name) for name in ("vit", "bert")}
    print(json.dumps({"agreement": agree}))
    print()
    print("| model | method (LXT mode) | batch | torch fwd s | lrpc fwd s | LXT explain s | lrpc explain s "
          "| LXT / lrpc (range) | peak RSS LXT / lrpc MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {METHOD[r['model']]} ({LXT_MODE[r['model']]}) | {r['batch']} "
              f"| {r['torch_forward_s']:.4f} | {r['lrpc_forward_s']:.4f} | {r['lxt_explain_s']:.4f} "
              f"| {r['lrpc_explain_s']:.4f} | {r['ratio_median']:.2f} ({r['ratio_min']:.2f}-{r['ratio_max']:.2f}) "
              f"| {r['lxt_rss_mb']:.0f} / {r['lrpc_rss_mb']:.0f} |")
    print()
    print("agreement at batch 1, max |lrpc - LXT| / max |LXT|: "
          + ", ".join(f"{k} {v:.2e}" if v is not None else f"{k} n/a" for k, v in agree.items()))
    return 0


if __name__ == "__main__":
    start = time.perf_counter()
    rc = main()
    if not any(arg in ("--worker", "--export") for arg in sys.argv):
        print(f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    sys.exit(rc)
