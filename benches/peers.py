#!/usr/bin/env python3
"""Side-by-side benchmark of lrpc against its peers on torchvision VGG16 and ResNet-50.

Run from the repository root (after `fixtures/zoo.py` and `cargo build --release`):

    /work/venv/bin/python benches/peers.py                       # everything, batch 1
    /work/venv/bin/python benches/peers.py --skip-lrpc --runs 3  # peers only (a few minutes)
    /work/venv/bin/python benches/peers.py --batch 1,8 --out table.md

Per model (fixtures/zoo/<name>/model.onnx, random weights) and batch size it measures

* onnxruntime forward (CPUExecutionProvider, intra_op_num_threads=2), the
  reference every other row is divided by ("x ORT fwd");
* torch forward under no_grad (the model Zennit explains, before canonizing);
* Zennit EpsilonPlusFlat and EpsilonGammaBox(low=-3, high=3), canonizer
  zennit.torchvision.VGGCanonizer / ResNetCanonizer (both apply
  SequentialMergeBatchNorm): one `attributor(x, attr_output_fn)` call, with
  attr_output = output * one_hot(argmax), i.e. forward + relevance;
* lrpc: `target/release/lrpc bench MODEL --method M --runs N --batch B
  --threads T --json` for epsilon, epsilon-plus-flat and epsilon-gamma-box
  (compile, forward and explain rows); "n/a" if the binary or the subcommand
  is missing or fails.

Every configuration runs in a fresh child process (this script re-executed
with --worker, or the lrpc binary) and its peak RSS is that child's ru_maxrss
(os.wait4), so configurations do not pollute each other. Python rows also show
the RSS the child had before it loaded the model (interpreter + imports).

The torch models are rebuilt exactly as fixtures/zoo.py builds them: its
MODELS, INPUT_SHAPE and calibrate_batchnorm are taken from its source (and
generate.py's seed_all), without importing it (that would import onnx and
onnxruntime into the Zennit children and inflate their RSS). The torch logits
on fixtures/zoo/<name>/input.npy are checked against output.npy (onnxruntime's)
to 1e-4, relative to the largest logit, before anything is timed.

Batch B > 1 for the peers: row 0 is input.npy, rows 1.. are seeded standard
normal. lrpc bench makes its own seeded random input of the same shape.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
ZOO = FIXTURES / "zoo"
LRPC = ROOT / "target" / "release" / "lrpc"

THREADS = 2
LOGIT_RTOL = 1e-4
ZBOX_LOW, ZBOX_HIGH = -3.0, 3.0
MODELS = ("vgg16", "resnet50")
ZENNIT_METHODS = ("epsilon-plus-flat", "epsilon-gamma-box")
LRPC_METHODS = ("epsilon", "epsilon-plus-flat", "epsilon-gamma-box")
EXTRA_INPUT_SEED = 12345
BG_WARN = 0.25  # cores used by other processes during a row above which it is flagged

# Children: no oversubscription of the 2 shared cores by OpenMP/MKL/rayon pools.
CHILD_ENV = {
    "OMP_NUM_THREADS": str(THREADS),
    "MKL_NUM_THREADS": str(THREADS),
    "OPENBLAS_NUM_THREADS": str(THREADS),
    "RAYON_NUM_THREADS": str(THREADS),
}


# --------------------------------------------------------------------------
# Workers (run in a fresh child process each)
# --------------------------------------------------------------------------


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _load_input(name: str, batch: int):
    import numpy as np

    x0 = np.load(ZOO / name / "input.npy").astype(np.float32)
    if batch == 1:
        return x0
    rest = np.random.default_rng(EXTRA_INPUT_SEED).standard_normal((batch - 1,) + x0.shape[1:])
    return np.concatenate([x0, rest.astype(np.float32)], axis=0)


def _time(fn, runs: int, warmup: int) -> list:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def _zoo_namespace() -> dict:
    """fixtures/zoo.py's MODELS, INPUT_SHAPE, calibrate_batchnorm and generate.py's seed_all,
    compiled from their source (see the module docstring for why not `import zoo`)."""
    import numpy as np
    import torch
    import torchvision

    ns = {"torch": torch, "torchvision": torchvision, "np": np, "__name__": "zoo_extract"}
    wanted = {
        FIXTURES / "generate.py": {"seed_all"},
        FIXTURES / "zoo.py": {"MODELS", "INPUT_SHAPE", "calibrate_batchnorm"},
    }
    for path, names in wanted.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        found = set()
        body = []
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name in names:
                body.append(node)
                found.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                hit = {t.id for t in targets if isinstance(t, ast.Name)} & names
                if hit:
                    body.append(node)
                    found |= hit
        missing = names - found
        if missing:
            raise RuntimeError(f"{path}: cannot find {sorted(missing)} (did its layout change?)")
        module = ast.Module(body=body, type_ignores=[])
        exec(compile(module, str(path), "exec"), ns)  # noqa: S102 - the project's own fixture code
    return ns


def build_torch_model(name: str):
    """The eval-mode torch model of fixtures/zoo.py's export_one(name), logits checked."""
    import numpy as np
    import torch

    ns = _zoo_namespace()
    ctor, seed = ns["MODELS"][name]
    ns["seed_all"](seed)  # same order as zoo.export_one
    model = ctor(weights=None)
    ns["calibrate_batchnorm"](model, seed)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.from_numpy(np.load(ZOO / name / "input.npy"))
    ref = np.load(ZOO / name / "output.npy")
    with torch.no_grad():
        y = model(x).numpy()
    rel = float(np.abs(y - ref).max() / np.abs(ref).max())
    if not rel <= LOGIT_RTOL:
        raise RuntimeError(f"{name}: torch logits differ from output.npy by {rel:.3g} (max-relative) "
                           f"> {LOGIT_RTOL}: the rebuilt model is not the exported one")
    return model, rel


def worker_ort(cfg: dict) -> dict:
    import numpy as np
    import onnxruntime as ort

    base = _rss_mb()
    so = ort.SessionOptions()
    so.intra_op_num_threads = THREADS
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(str(ZOO / cfg["model"] / "model.onnx"), so,
                                providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    x1 = _load_input(cfg["model"], 1)
    ref = np.load(ZOO / cfg["model"] / "output.npy")
    y = sess.run(None, {in_name: x1})[0]
    rel = float(np.abs(y - ref).max() / np.abs(ref).max())
    x = _load_input(cfg["model"], cfg["batch"])
    times = _time(lambda: sess.run(None, {in_name: x}), cfg["runs"], cfg["warmup"])
    return {"times": times, "base_rss_mb": base, "logit_rel": rel}


def worker_torch(cfg: dict) -> dict:
    import torch

    torch.set_num_threads(THREADS)
    base = _rss_mb()
    model, rel = build_torch_model(cfg["model"])
    x = torch.from_numpy(_load_input(cfg["model"], cfg["batch"]))

    def fwd():
        with torch.no_grad():
            model(x)

    times = _time(fwd, cfg["runs"], cfg["warmup"])
    return {"times": times, "base_rss_mb": base, "logit_rel": rel}


def worker_zennit(cfg: dict) -> dict:
    import torch
    from zennit.attribution import Gradient
    from zennit.composites import EpsilonGammaBox, EpsilonPlusFlat
    from zennit.torchvision import ResNetCanonizer, VGGCanonizer

    torch.set_num_threads(THREADS)
    base = _rss_mb()
    name, method = cfg["model"], cfg["method"]
    model, rel = build_torch_model(name)
    x = torch.from_numpy(_load_input(name, cfg["batch"]))
    with torch.no_grad():
        y_plain = model(x)
    canonizers = [VGGCanonizer()] if name.startswith("vgg") else [ResNetCanonizer()]
    if method == "epsilon-plus-flat":
        composite = EpsilonPlusFlat(canonizers=canonizers)
    elif method == "epsilon-gamma-box":
        composite = EpsilonGammaBox(low=ZBOX_LOW, high=ZBOX_HIGH, canonizers=canonizers)
    else:
        raise ValueError(f"unknown Zennit method {method!r}")

    def attr_output_fn(output):
        return output * torch.nn.functional.one_hot(output.argmax(1), output.shape[1]).to(output.dtype)

    last = {}
    with Gradient(model=model, composite=composite) as attributor:
        def explain():
            last["out"], last["rel"] = attributor(x, attr_output_fn)
        times = _time(explain, cfg["runs"], cfg["warmup"])
    # Sanity: the canonized (BN-merged) forward still gives the model's logits, and the
    # relevance of the explained logit is finite and sums to about that logit (conservation).
    out, relevance = last["out"].detach(), last["rel"].detach()
    canon_rel = float((out - y_plain).abs().max() / y_plain.abs().max())
    top = y_plain.argmax(1)
    logit = y_plain.gather(1, top[:, None])[:, 0]
    rsum = relevance.flatten(1).sum(1)
    return {"times": times, "base_rss_mb": base, "logit_rel": rel, "canon_logit_rel": canon_rel,
            "finite": bool(torch.isfinite(relevance).all()),
            "relevance_sum": rsum.tolist(), "logit": logit.tolist()}


WORKERS = {"ort": worker_ort, "torch": worker_torch, "zennit": worker_zennit}


def worker_main(spec: str) -> int:
    cfg = json.loads(spec)
    try:
        res = WORKERS[cfg["tool"]](cfg)
        res["ok"] = True
    except Exception as e:  # reported by the parent as n/a
        import traceback

        traceback.print_exc()
        res = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    res["self_rss_mb"] = _rss_mb()
    print("RESULT " + json.dumps(res), flush=True)
    return 0


# --------------------------------------------------------------------------
# Parent: spawning, collecting, formatting
# --------------------------------------------------------------------------


def _cpu_busy_s():
    """Seconds of CPU time all processes on the machine have used so far (/proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # user..steal, not guest (counted in user)


def run_child(argv: list, timeout: float) -> dict:
    """Runs argv in a fresh process; returns rc, stdout, stderr, wall time, its ru_maxrss and
    bg_cores: the CPU other processes used meanwhile, in cores (0 = the child had the machine)."""
    env = dict(os.environ, **CHILD_ENV)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        busy0 = _cpu_busy_s()
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=ROOT)
        deadline = t0 + timeout
        timed_out = False
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                p.kill()
                _, status, ru = os.wait4(p.pid, 0)
                timed_out = True
                break
            time.sleep(0.05)
        p.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
        wall = time.perf_counter() - t0
        busy1 = _cpu_busy_s()
        bg = None
        if busy0 is not None and busy1 is not None and wall > 0:
            # this parent polls every 50 ms: negligible
            bg = max(0.0, (busy1 - busy0) - (ru.ru_utime + ru.ru_stime)) / wall
        out.seek(0)
        err.seek(0)
        return {"rc": p.returncode, "stdout": out.read().decode(errors="replace"),
                "stderr": err.read().decode(errors="replace"), "wall_s": wall,
                "maxrss_mb": ru.ru_maxrss / 1024.0, "timed_out": timed_out, "bg_cores": bg}


def _last_line(text: str, limit: int = 200) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else "")[:limit]


def run_python_worker(cfg: dict, timeout: float) -> dict:
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(cfg)]
    c = run_child(argv, timeout)
    res = None
    for line in c["stdout"].splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[len("RESULT "):])
    if res is None:
        why = "timed out" if c["timed_out"] else f"exit {c['rc']}: {_last_line(c['stderr'])}"
        res = {"ok": False, "error": why}
    res["maxrss_mb"] = c["maxrss_mb"]
    res["wall_s"] = c["wall_s"]
    res["bg_cores"] = c["bg_cores"]
    return res


def run_lrpc(model: str, method: str, batch: int, runs: int, threads: int, timeout: float) -> dict:
    if not LRPC.exists():
        return {"ok": False, "error": f"{LRPC} missing (cargo build --release)"}
    base = [str(LRPC), "bench", str(ZOO / model / "model.onnx"), "--method", method,
            "--runs", str(runs), "--batch", str(batch), "--json"]
    notes = []
    c = run_child(base + ["--threads", str(threads)], timeout)
    if c["rc"] != 0 or c["timed_out"]:
        err = c["stderr"] + c["stdout"]
        if "unrecognized subcommand" in err:
            why = "no `bench` subcommand in this lrpc build"
        elif c["timed_out"]:
            why = f"timed out after {timeout:.0f} s"
        else:
            why = f"exit {c['rc']}: {_last_line(err)}"
        return {"ok": False, "error": why, "maxrss_mb": c["maxrss_mb"], "bg_cores": c["bg_cores"]}
    try:
        js = json.loads(c["stdout"].strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"ok": False, "error": f"no JSON on stdout: {_last_line(c['stdout'])!r}"}
    if js.get("batch") not in (None, batch):
        notes.append(f"lrpc reports batch {js.get('batch')}")
    return {"ok": True, "json": js, "maxrss_mb": c["maxrss_mb"], "wall_s": c["wall_s"],
            "bg_cores": c["bg_cores"], "notes": notes}


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    v = {"python": platform.python_version()}
    for dist in ("torch", "torchvision", "zennit", "onnxruntime", "onnx", "numpy"):
        try:
            v[dist] = version(dist)
        except PackageNotFoundError:
            v[dist] = "not installed"
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    v["cpu"] = f"{cpu} ({os.cpu_count()} logical CPUs visible)"
    if LRPC.exists():
        try:
            v["lrpc"] = subprocess.run([str(LRPC), "--version"], capture_output=True, text=True,
                                       timeout=30).stdout.strip() or "?"
        except (OSError, subprocess.SubprocessError):
            v["lrpc"] = "?"
    else:
        v["lrpc"] = "binary missing"
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=ROOT, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "Cargo.toml"],
                               capture_output=True, text=True, cwd=ROOT, timeout=30).stdout.strip()
        v["git"] = rev + (" (+ uncommitted changes in src/)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return v


def fmt_s(t) -> str:
    if t is None:
        return "n/a"
    return f"{t:.4f}" if t < 1 else f"{t:.3f}" if t < 100 else f"{t:.1f}"


def fmt_bg(b) -> str:
    return "n/a" if b is None else f"{b:.2f}"


def fmt_mb(m) -> str:
    return "n/a" if m is None else f"{m:.0f}"


def main(argv=None) -> int:
    global LRPC  # --lrpc
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(MODELS), help="comma list of %(default)s")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per peer (median), default %(default)s")
    ap.add_argument("--warmup", type=int, default=1, help="untimed warm-up runs per peer, default %(default)s")
    ap.add_argument("--batch", default="1", help="comma list of batch sizes, e.g. 1,8")
    ap.add_argument("--lrpc", type=Path, default=LRPC, help="lrpc binary, default target/release/lrpc")
    ap.add_argument("--lrpc-runs", type=int, default=1,
                    help="--runs for lrpc bench (default 1: the interpreter takes minutes on VGG16)")
    ap.add_argument("--lrpc-threads", type=int, default=THREADS,
                    help="--threads for lrpc bench, default %(default)s")
    ap.add_argument("--lrpc-timeout", type=float, default=3600, help="seconds per lrpc run, default %(default)s")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per peer child, default %(default)s")
    ap.add_argument("--skip-lrpc", action="store_true", help="peers only")
    ap.add_argument("--no-torch-forward", action="store_true", help="skip the plain torch forward row")
    ap.add_argument("--out", type=Path, help="also write the markdown to this file")
    ap.add_argument("--json-out", type=Path, help="also write all raw results as JSON")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        return worker_main(args.worker)

    LRPC = args.lrpc.resolve()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    batches = [int(b) for b in args.batch.split(",") if b.strip()]
    for m in models:
        if not (ZOO / m / "model.onnx").exists():
            print(f"fixtures/zoo/{m}/model.onnx missing: run /work/venv/bin/python fixtures/zoo.py {m}",
                  file=sys.stderr)
            return 2
    if args.runs < 1 or args.lrpc_runs < 1 or any(b < 1 for b in batches):
        print("--runs, --lrpc-runs and batch sizes must be positive", file=sys.stderr)
        return 2

    cmdline = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    vers = versions()
    rows = []  # dicts: model, batch, tool, median, rss, base, notes
    raw = []
    ort_medians = {}  # (model, batch) -> onnxruntime forward median: every ratio's denominator
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:7.1f} s] {msg}", file=sys.stderr, flush=True)

    for model in models:
        for batch in batches:
            common = {"model": model, "batch": batch, "runs": args.runs, "warmup": args.warmup}
            peer_cfgs = [("onnxruntime forward", dict(common, tool="ort"))]
            if not args.no_torch_forward:
                peer_cfgs.append(("torch forward (no_grad)", dict(common, tool="torch")))
            for m in ZENNIT_METHODS:
                peer_cfgs.append((f"Zennit {m}", dict(common, tool="zennit", method=m)))
            for label, cfg in peer_cfgs:
                log(f"{model} b{batch}: {label} ...")
                r = run_python_worker(cfg, args.timeout)
                raw.append({"label": label, "cfg": cfg, "result": r})
                notes = []
                med = statistics.median(r["times"]) if r.get("ok") else None
                if not r.get("ok"):
                    notes.append(r.get("error", "failed"))
                else:
                    notes.append(f"logits vs output.npy {r['logit_rel']:.1e}")
                    if "canon_logit_rel" in r:
                        notes.append(f"canonized {r['canon_logit_rel']:.1e}")
                        if not r["finite"]:
                            notes.append("NON-FINITE relevance")
                        sums = r["relevance_sum"]
                        notes.append(f"sum R / logit {sums[0] / r['logit'][0]:.3f}")
                    if len(r["times"]) > 1:
                        notes.append(f"min {fmt_s(min(r['times']))} max {fmt_s(max(r['times']))}")
                if cfg["tool"] == "ort":
                    ort_medians[(model, batch)] = med
                rows.append({"model": model, "batch": batch, "tool": label, "median": med,
                             "rss": r.get("maxrss_mb"), "base": r.get("base_rss_mb"),
                             "bg": r.get("bg_cores"), "notes": "; ".join(notes), "runs": args.runs})
                log(f"  -> {fmt_s(med)} s, peak RSS {fmt_mb(r.get('maxrss_mb'))} MB "
                    f"(child wall {r.get('wall_s', 0):.1f} s, others used {fmt_bg(r.get('bg_cores'))} cores)")
            if args.skip_lrpc:
                continue
            first = True
            for m in LRPC_METHODS:
                log(f"{model} b{batch}: lrpc bench --method {m} --runs {args.lrpc_runs} ...")
                r = run_lrpc(model, m, batch, args.lrpc_runs, args.lrpc_threads, args.lrpc_timeout)
                raw.append({"label": f"lrpc {m}", "result": r})
                if not r["ok"]:
                    log(f"  -> n/a: {r['error']}")
                    rows.append({"model": model, "batch": batch, "tool": f"lrpc {m} (explain)",
                                 "median": None, "rss": None, "base": None, "bg": r.get("bg_cores"),
                                 "notes": r["error"], "runs": args.lrpc_runs})
                    first = False
                    continue
                js = r["json"]
                extra = [f"{js.get('engine', '?')}, {js.get('threads', '?')} thread(s)"] + list(r["notes"])
                if js.get("peak_rss_mb") is not None:
                    extra.append(f"self-reported peak {js['peak_rss_mb']:.0f} MB")
                note = "; ".join(extra)
                if first:  # compile and forward are (nearly) method-independent: show them once
                    rows.append({"model": model, "batch": batch, "tool": "lrpc compile (load+prepare)",
                                 "median": js.get("compile_s"), "rss": None, "base": None,
                                 "notes": f"single run, {m}", "runs": 1, "no_ratio": True})
                    rows.append({"model": model, "batch": batch, "tool": "lrpc forward",
                                 "median": js.get("forward_s"), "rss": None, "base": None,
                                 "notes": note, "runs": args.lrpc_runs})
                rows.append({"model": model, "batch": batch, "tool": f"lrpc {m} (explain)",
                             "median": js.get("explain_s"), "rss": r["maxrss_mb"], "base": None,
                             "bg": r.get("bg_cores"),
                             "notes": f"compile {fmt_s(js.get('compile_s'))} s, forward "
                                      f"{fmt_s(js.get('forward_s'))} s; {note}",
                             "runs": args.lrpc_runs})
                log(f"  -> explain {fmt_s(js.get('explain_s'))} s, peak RSS {fmt_mb(r['maxrss_mb'])} MB")
                first = False

    total = time.perf_counter() - t_start
    md = []
    md.append("# lrpc vs peers")
    md.append("")
    md.append(f"Command: `{cmdline}`")
    md.append("")
    md.append(f"Date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; total wall time {total:.0f} s")
    md.append("")
    md.append("| | |")
    md.append("| --- | --- |")
    for k in ("cpu", "python", "torch", "torchvision", "zennit", "onnxruntime", "onnx", "numpy", "lrpc", "git"):
        if k in vers:
            md.append(f"| {k} | {vers[k]} |")
    md.append("")
    md.append(f"Threads: {THREADS} (onnxruntime intra_op_num_threads, torch.set_num_threads, "
              f"lrpc --threads {args.lrpc_threads}). Peers: median of {args.runs} runs after "
              f"{args.warmup} warm-up; lrpc: median of {args.lrpc_runs} after one warm-up run (`lrpc bench`). "
              "Zennit = one `attributor(x, attr_output_fn)` call (forward + relevance). "
              "x ORT fwd = median / onnxruntime forward median of the same model and batch. "
              "Peak RSS = ru_maxrss of a fresh child process per row; base = that child's RSS "
              "before loading the model (interpreter + imports). bg cores = CPU time other "
              "processes used while that child ran / its wall time (/proc/stat minus the child's "
              f"rusage): with {os.cpu_count()} CPUs and {THREADS} threads, rows with bg cores "
              f"above {BG_WARN} were measured on a shared machine and are unreliable (rerun when it is idle).")
    noisy = [r for r in rows if r.get("bg") is not None and r["bg"] > BG_WARN]
    if noisy:
        md.append("")
        md.append(f"**Warning: {len(noisy)} of {len(rows)} rows ran while other processes used more than "
                  f"{BG_WARN} cores** (marked with !).")
    md.append("")
    md.append("| model | batch | tool / method | median s | x ORT fwd | peak RSS MB | base RSS MB | bg cores | notes |")
    md.append("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for row in rows:
        ort_m = ort_medians.get((row["model"], row["batch"]))
        if row["median"] is None or not ort_m or row.get("no_ratio"):
            ratio = "n/a" if row["median"] is None or not ort_m else "-"
        else:
            ratio = f"{row['median'] / ort_m:.1f}"
        rss = "-" if row["rss"] is None and row["median"] is not None else fmt_mb(row["rss"])
        base = "-" if row["base"] is None else fmt_mb(row["base"])
        bg = "-" if row.get("bg") is None else fmt_bg(row["bg"]) + (" !" if row["bg"] > BG_WARN else "")
        md.append(f"| {row['model']} | {row['batch']} | {row['tool']} | {fmt_s(row['median'])} | "
                  f"{ratio} | {rss} | {base} | {bg} | {row['notes']} |")
    text = "\n".join(md) + "\n"
    print(text, end="")
    if args.out:
        args.out.write_text(text)
    if args.json_out:
        args.json_out.write_text(json.dumps({"command": cmdline, "versions": vers, "rows": rows,
                                             "raw": raw}, indent=2, default=str) + "\n")
    failed = [r for r in rows if r["median"] is None and not r["tool"].startswith("lrpc")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
