#!/usr/bin/env python3
"""Op coverage of lrpc over torchvision: export every architecture, then try lrpc on it.

Run from the repository root with the fixtures venv (torch, torchvision, onnx,
onnxruntime, onnxscript; see fixtures/requirements.txt):

    # phase 1: export (resumable: a model/exporter with a meta.json is skipped unless --force)
    nice -n 19 /work/venv/bin/python benches/coverage.py                      # everything
    nice -n 19 /work/venv/bin/python benches/coverage.py --models resnet18,vit_b_16
    nice -n 19 /work/venv/bin/python benches/coverage.py --reduced            # CI-sized, fixtures/coverage_ci/
    /work/venv/bin/python benches/coverage.py --summarize                      # ops_summary.{json,md} only
    /work/venv/bin/python benches/coverage.py --list                           # model names

    # phase 2: lrpc on every exported model -> docs/coverage.md
    nice -n 19 /work/venv/bin/python benches/coverage.py --lrpc target/release/lrpc [--models ...] [--reduced]

Phase 1 writes, for every model and exporter (`torchscript`: torch.onnx.export(dynamo=False),
opset 17; `dynamo`: torch.onnx.export(dynamo=True), opset 18):

    fixtures/coverage/<model>/<exporter>/model.onnx   (+ model.onnx.data when > 2 GB)
                                        /input.npy    float32, seeded standard normal
                                        /output.npy   onnxruntime CPU output (first graph output;
                                                      output_<i>.npy for the others), one thread
                                        /output_f64.npy  the same model in float64 in torch
                                                      (first output), the ground truth
                                        /meta.json    op histogram, attributes of interest, opset,
                                                      exporter, export seconds, errors, ...
                                        /log.txt      the worker's stdout/stderr

Every model/exporter pair is exported in its own Python subprocess (timeout, address-space
limit via resource.setrlimit, nice 19, one thread), so a model that hangs, crashes or
eats the machine only loses its own entry. A failed worker still gets a meta.json with
`status` and `errors`. At the end (and with --summarize) fixtures/coverage/ops_summary.json
and ops_summary.md aggregate the op histograms and attribute forms per exporter.

Models: every classification architecture of torchvision.models.list_models(module=
torchvision.models), the segmentation models (output "out" only) and the distinct
detection backbones (model.backbone of the torchvision detection models: feature
extractor + FPN / extra layers, every feature map an output). All with weights=None
(and weights_backbone=None), seeded, eval mode; BatchNorm gamma/beta randomised and
running statistics estimated from a seeded random batch (as fixtures/zoo.py does), so
the logits stay in a sane range. TorchScript exports use training=PRESERVE (BN nodes kept,
as in fixtures/generate.py); the dynamo exporter runs with its defaults (its optimizer
fuses BN into Conv where it can). Static batch 1 for both (--dynamic-batch for a symbolic one).

--reduced builds CI-sized variants of the same architectures (reduced width / depth
where torchvision's classes take it as an argument or a module can be rebuilt smaller, 10
classes, small inputs) into fixtures/coverage_ci/, every model.onnx < 2 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
import traceback
import zlib
from collections import Counter, OrderedDict, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FULL_DIR = ROOT / "fixtures" / "coverage"
CI_DIR = ROOT / "fixtures" / "coverage_ci"
EXPORTERS = {"torchscript": 17, "dynamo": 18}
CI_MAX_BYTES = 2 * 1024 * 1024
TWO_GB = 2 * 1024 ** 3

# Ops whose attributes (or input forms) are recorded per node in meta.json "forms".
FORM_OPS = {
    "Resize", "Upsample", "Pad", "Split", "Einsum", "Gelu", "LayerNormalization", "Conv",
    "ConvTranspose", "MaxPool", "AveragePool", "Softmax", "LogSoftmax", "Gemm", "MatMul",
    "Transpose", "Reshape", "Gather", "Slice", "Concat", "Clip", "Cast", "Constant",
    "Squeeze", "Unsqueeze", "BatchNormalization", "HardSigmoid", "Dropout", "Shape",
    "Flatten", "Expand", "Where", "Range", "ConstantOfShape", "Tile", "ScatterND",
    "InstanceNormalization", "GroupNormalization", "ReduceMean", "ReduceSum", "ReduceMax",
    "ReduceMin", "ReduceProd", "ReduceL2", "ReduceL1", "ReduceSumSquare", "ReduceLogSumExp",
    "Pow", "LRN", "Mul", "Add", "Sub", "Div", "ArgMax", "Erf", "Sqrt", "Equal",
}


# ----------------------------------------------------------------------------------------
# Model registry
# ----------------------------------------------------------------------------------------


def seed_of(name: str) -> int:
    return zlib.crc32(name.encode()) % (2 ** 31)


def model_names() -> "OrderedDict[str, dict]":
    """name -> spec {kind, base, input (C,H,W), reduced_input}. No torch import needed."""
    import torchvision.models as tvm

    specs: "OrderedDict[str, dict]" = OrderedDict()
    for name in tvm.list_models(module=tvm):
        size = 299 if name == "inception_v3" else 224
        specs[name] = {"kind": "classification", "base": name, "input": [3, size, size]}
    for name in tvm.list_models(module=tvm.segmentation):
        specs[name] = {"kind": "segmentation", "base": name, "input": [3, 224, 224]}
    for name, size, same in DETECTION_BACKBONES:
        specs[name + "_backbone"] = {"kind": "detection_backbone", "base": name,
                                     "input": [3, size, size], "same_backbone_as": same}
    return specs


# Detection models whose backbones differ (the others share one of these, listed).
DETECTION_BACKBONES = [
    ("fasterrcnn_resnet50_fpn", 224, ["maskrcnn_resnet50_fpn", "keypointrcnn_resnet50_fpn"]),
    ("fasterrcnn_resnet50_fpn_v2", 224, ["maskrcnn_resnet50_fpn_v2"]),
    ("fasterrcnn_mobilenet_v3_large_fpn", 320, ["fasterrcnn_mobilenet_v3_large_320_fpn"]),
    ("retinanet_resnet50_fpn", 224, []),
    ("retinanet_resnet50_fpn_v2", 224, []),
    ("fcos_resnet50_fpn", 224, []),
    ("ssd300_vgg16", 300, []),
    ("ssdlite320_mobilenet_v3_large", 320, []),
]


def approx_params(name: str, spec: dict) -> int:
    """Parameter count from torchvision's weight metadata (no download), for ordering."""
    import torchvision.models as tvm

    try:
        w = list(tvm.get_model_weights(spec["base"]))[0]
        return int(w.meta.get("num_params", 0))
    except Exception:
        return 0


def OutWrapper(inner, key=None):
    """Segmentation: the "out" map only (key="out"). Backbones: every feature map, in order."""
    import torch.nn as nn

    class Out(nn.Module):
        def __init__(self, inner, key=None):
            super().__init__()
            self.inner, self.key = inner, key

        def forward(self, x):
            y = self.inner(x)
            if self.key is not None:
                return y[self.key]
            return tuple(y.values())

    return Out(inner, key)


def build(name: str, spec: dict, reduced: bool):
    """-> (torch module in eval mode, input shape with batch, notes dict)."""
    import torch
    import torch.nn as nn
    import torchvision.models as tvm

    notes: dict = {}
    kind = spec["kind"]
    if reduced:
        import coverage_reduced as red  # benches/coverage_reduced.py

        model, chw, rnotes = red.build_reduced(name, spec)
        notes.update(rnotes)
    else:
        chw = spec["input"]
        if kind == "classification":
            model = tvm.get_model(name, weights=None)
        elif kind == "segmentation":
            model = OutWrapper(tvm.get_model(name, weights=None, weights_backbone=None), "out")
        else:
            det = tvm.get_model(spec["base"], weights=None, weights_backbone=None)
            model = OutWrapper(det.backbone)
            notes["same_backbone_as"] = spec.get("same_backbone_as", [])
    return model, [1] + list(chw), notes


def randomise_zero_linears(model, seed: int) -> int:
    """Linear layers whose weight is all zero (torchvision's ViT heads are initialised so) get
    seeded normal weights (sd 0.02): with a zero head every logit and relevance is 0, which
    tests nothing. Returns how many."""
    import torch

    g = torch.Generator().manual_seed(seed + 2000)
    count = 0
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear) and not m.weight.any():
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.02)
                count += 1
    return count


def calibrate_batchnorm(model, x_shape, seed: int, batch: int = 2) -> int:
    """As fixtures/zoo.py: random gamma/beta, running stats from a seeded random batch
    (2 images for the full models, 8 for the reduced ones, whose late feature maps are 2x2)."""
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for bn in bns:
            n = bn.num_features
            if bn.affine:
                bn.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
                bn.bias.copy_(torch.randn(n, generator=g) * 0.1)
            if bn.track_running_stats:
                bn.reset_running_stats()
                bn.momentum = None  # cumulative moving average
        model.train()
        calib = torch.randn([batch] + list(x_shape[1:]), generator=g)
        model(calib)
        for bn in bns:
            bn.momentum = 0.1
    model.eval()
    return len(bns)


# ----------------------------------------------------------------------------------------
# ONNX analysis (shared by phase 1, the summary and fixtures/wild)
# ----------------------------------------------------------------------------------------


def _attr_value(a):
    from onnx import helper

    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, (list, tuple)):
        return [x.decode(errors="replace") if isinstance(x, bytes) else x for x in v]
    if hasattr(v, "dims"):  # TensorProto
        return f"tensor{list(v.dims)}"
    if hasattr(v, "node"):  # GraphProto
        return "graph"
    return v


def node_forms(model) -> dict:
    """op -> Counter of 'form' strings (attributes / input kinds of interest), per node."""
    import onnx

    g = model.graph
    consts = {t.name for t in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            consts.update(n.output)
    ranks = {}
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
        for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
                ranks[vi.name] = len(vi.type.tensor_type.shape.dim)
        for t in g.initializer:
            ranks[t.name] = len(t.dims)
    except Exception:
        pass

    def kind(i):
        if i == "":
            return "absent"
        return "const" if i in consts else "computed"

    forms: dict = defaultdict(Counter)
    for n in g.node:
        op = n.op_type
        if n.domain not in ("", "ai.onnx"):
            forms["(domain)"][f"{n.domain}::{op}"] += 1
        if op not in FORM_OPS:
            continue
        at = {a.name: _attr_value(a) for a in n.attribute}
        ins = list(n.input)
        f = None
        if op in ("Resize", "Upsample"):
            parts = [f"mode={at.get('mode', 'nearest')}"]
            if op == "Resize":
                parts.append(f"ctm={at.get('coordinate_transformation_mode', 'half_pixel')}")
                if at.get("mode", "nearest") == "nearest":
                    parts.append(f"nearest_mode={at.get('nearest_mode', 'round_prefer_floor')}")
                if at.get("mode") == "cubic":
                    parts.append(f"cubic_coeff_a={at.get('cubic_coeff_a', -0.75)}")
                if at.get("antialias"):
                    parts.append("antialias=1")
                scales = ins[2] if len(ins) > 2 else ""
                sizes = ins[3] if len(ins) > 3 else ""
                if scales:
                    parts.append(f"scales={kind(scales)}")
                if sizes:
                    parts.append(f"sizes={kind(sizes)}")
            f = " ".join(parts)
        elif op == "Pad":
            parts = [f"mode={at.get('mode', 'constant')}"]
            if "pads" in at:
                parts.append("pads=attr")
            elif len(ins) > 1:
                parts.append(f"pads={kind(ins[1])}")
            if len(ins) > 2 and ins[2]:
                parts.append(f"value={kind(ins[2])}")
            if len(ins) > 3 and ins[3]:
                parts.append(f"axes={kind(ins[3])}")
            f = " ".join(parts)
        elif op == "Split":
            if "split" in at:
                f = "split=attr"
            elif len(ins) > 1 and ins[1]:
                f = f"split=input({kind(ins[1])})"
            elif "num_outputs" in at:
                f = "num_outputs"
            else:
                f = "equal(no split)"
            f += f" outputs={len(n.output)} axis={at.get('axis', 0)}"
        elif op.startswith("Reduce"):
            if "axes" in at:
                ax = f"axes=attr{at['axes']}"
            elif len(ins) > 1 and ins[1]:
                ax = f"axes=input({kind(ins[1])})"
            else:
                ax = "axes=none(all)"
            f = f"{ax} keepdims={at.get('keepdims', 1)}"
            if at.get("noop_with_empty_axes"):
                f += " noop_with_empty_axes=1"
        elif op == "Einsum":
            f = at.get("equation", "?")
        elif op == "Gelu":
            f = f"approximate={at.get('approximate', 'none')}"
        elif op == "LayerNormalization":
            f = f"axis={at.get('axis', -1)} stash_type={at.get('stash_type', 1)}"
        elif op in ("InstanceNormalization", "GroupNormalization"):
            f = f"num_groups={at.get('num_groups', '-')}"
        elif op in ("Conv", "ConvTranspose"):
            ks = at.get("kernel_shape")
            parts = [f"{len(ks)}d" if ks else "?d", f"k={'x'.join(map(str, ks))}" if ks else "k=?"]
            grp = at.get("group", 1)
            if grp != 1:
                parts.append("group>1")
            if any(d != 1 for d in at.get("dilations", [1])):
                parts.append("dilated")
            if at.get("auto_pad", "NOTSET") not in ("NOTSET", ""):
                parts.append(f"auto_pad={at['auto_pad']}")
            p = at.get("pads")
            if p and p[: len(p) // 2] != p[len(p) // 2:]:
                parts.append("asym_pads")
            if len(ins) < 3 or not ins[2]:
                parts.append("no_bias")
            if ins and len(ins) > 1 and kind(ins[1]) == "computed":
                parts.append("weight=computed")
            f = " ".join(parts)
        elif op in ("MaxPool", "AveragePool"):
            ks = at.get("kernel_shape", [])
            parts = [f"k={'x'.join(map(str, ks))}", f"s={'x'.join(map(str, at.get('strides', [1])))}"]
            if at.get("ceil_mode"):
                parts.append("ceil_mode")
            if op == "AveragePool" and at.get("count_include_pad"):
                parts.append("count_include_pad")
            if any(d != 1 for d in at.get("dilations", [1])):
                parts.append("dilated")
            p = at.get("pads")
            if p and any(p):
                parts.append("pads" if p[: len(p) // 2] == p[len(p) // 2:] else "asym_pads")
            if at.get("auto_pad", "NOTSET") not in ("NOTSET", ""):
                parts.append(f"auto_pad={at['auto_pad']}")
            if len(n.output) > 1:
                parts.append("indices")
            f = " ".join(parts)
        elif op in ("Softmax", "LogSoftmax", "Concat", "Flatten", "ArgMax"):
            f = f"axis={at.get('axis', 1 if op in ('Flatten',) else -1)}"
            if op == "ArgMax":
                f += f" keepdims={at.get('keepdims', 1)}"
        elif op == "Gemm":
            f = f"transA={at.get('transA', 0)} transB={at.get('transB', 0)}"
            if at.get("alpha", 1.0) != 1.0 or at.get("beta", 1.0) != 1.0:
                f += " alpha/beta"
            if len(ins) < 3 or not ins[2]:
                f += " no_C"
        elif op == "MatMul":
            ra, rb = ranks.get(ins[0], "?"), ranks.get(ins[1], "?")
            f = f"rank{ra}x{rb} B={kind(ins[1])}"
        elif op in ("Add", "Sub", "Mul", "Div", "Pow", "Equal", "Where", "Expand"):
            f = " ".join(kind(i) for i in ins)
        elif op == "Transpose":
            f = f"perm={at.get('perm')}"
        elif op == "Reshape":
            f = f"shape={kind(ins[1])}" + (" allowzero" if at.get("allowzero") else "")
        elif op == "Gather":
            r = ranks.get(ins[1], "?") if len(ins) > 1 else "?"
            f = f"axis={at.get('axis', 0)} indices={kind(ins[1])} rank{r}"
        elif op == "Slice":
            f = " ".join(kind(i) for i in ins[1:])
            if len(ins) > 4 and ins[4]:
                f += " steps"
        elif op == "Clip":
            if "min" in at or "max" in at:
                f = "attrs"
            else:
                f = "min=" + (kind(ins[1]) if len(ins) > 1 else "absent") + " max=" + (kind(ins[2]) if len(ins) > 2 else "absent")
        elif op == "Cast":
            import onnx as _o

            f = f"to={_o.TensorProto.DataType.Name(at.get('to', 0))}"
        elif op == "Constant":
            k = [a.name for a in n.attribute]
            f = ",".join(k)
            if "value" in at:
                t = next(a.t for a in n.attribute if a.name == "value")
                import onnx as _o

                f += f" {_o.TensorProto.DataType.Name(t.data_type)} rank{len(t.dims)}"
        elif op in ("Squeeze", "Unsqueeze"):
            if "axes" in at:
                f = "axes=attr"
            elif len(ins) > 1 and ins[1]:
                f = f"axes=input({kind(ins[1])})"
            else:
                f = "axes=none"
        elif op == "BatchNormalization":
            f = f"training_mode={at.get('training_mode', 0)} outputs={len(n.output)}"
        elif op == "HardSigmoid":
            f = f"alpha={round(at.get('alpha', 0.2), 6)} beta={round(at.get('beta', 0.5), 6)}"
        elif op == "Dropout":
            f = f"inputs={len(ins)}"
        elif op == "Shape":
            f = "start/end" if ("start" in at or "end" in at) else "full"
        elif op in ("Range", "ConstantOfShape", "Tile", "ScatterND"):
            f = " ".join(kind(i) for i in ins)
        elif op == "LRN":
            f = f"size={at.get('size')}"
        else:
            f = " ".join(kind(i) for i in ins)
        forms[op][f] += 1
    return {k: dict(v) for k, v in forms.items()}


def op_histogram(model) -> dict:
    c = Counter()
    for n in model.graph.node:
        c[n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}"] += 1
    return dict(sorted(c.items()))


def dims_of(vi) -> list:
    out = []
    for d in vi.type.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            out.append(d.dim_value)
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append(None)
    return out


# ----------------------------------------------------------------------------------------
# Phase 1 worker: one model, one exporter, in its own process
# ----------------------------------------------------------------------------------------


def worker(name: str, exporter: str, out_dir: Path, reduced: bool, dynamic_batch: bool) -> int:
    import warnings

    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    torch.manual_seed(seed_of(name))
    np.random.seed(seed_of(name) % (2 ** 32))
    spec = model_names()[name]
    opset = EXPORTERS[exporter]
    meta = {
        "model": name, "kind": spec["kind"], "exporter": exporter, "opset_requested": opset,
        "reduced": reduced, "seed": seed_of(name), "status": "started", "errors": [],
        "script": "benches/coverage.py",
        "versions": {
            "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": __import__("torchvision").__version__, "onnx": onnx.__version__,
            "onnxruntime": ort.__version__, "numpy": np.__version__,
        },
    }
    try:
        import onnxscript

        meta["versions"]["onnxscript"] = onnxscript.__version__
    except Exception:
        pass
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.iterdir():
        if stale.name != "log.txt":
            stale.unlink() if stale.is_file() else shutil.rmtree(stale)
    meta_path = out_dir / "meta.json"

    def save_meta():
        with open(meta_path, "w") as f:
            json.dump(meta, f, indent=1, sort_keys=True, default=str)
            f.write("\n")

    t0 = time.time()
    model, x_shape, notes = build(name, spec, reduced)
    meta.update(notes)
    model.eval()
    meta["batchnorm_layers"] = calibrate_batchnorm(model, x_shape, seed_of(name), batch=8 if reduced else 2)
    meta["zero_linears_randomised"] = randomise_zero_linears(model, seed_of(name))
    meta["parameters"] = int(sum(p.numel() for p in model.parameters()))
    x = np.random.default_rng(seed_of(name)).standard_normal(x_shape).astype(np.float32)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        yt = model(xt)
    yts = [yt] if isinstance(yt, torch.Tensor) else list(yt)
    # The float64 forward is the ground truth both float32 engines are measured against: on
    # 100+-layer random-weight nets two float32 summation orders differ by more than 1e-4 of
    # the output, so "within 1e-4 of onnxruntime" alone cannot tell a wrong answer from a
    # different rounding.
    y64 = None
    try:
        import copy

        with torch.no_grad():
            m64 = copy.deepcopy(model).double()
            y64 = m64(xt.double())
            del m64
        y64 = (y64 if isinstance(y64, torch.Tensor) else list(y64)[0]).numpy()
    except Exception as e:  # noqa: BLE001
        meta["errors"].append("float64 reference: " + first_line(e))
    meta["torch_output_shapes"] = [list(t.shape) for t in yts]
    meta["build_seconds"] = round(time.time() - t0, 2)
    out_names = ["output"] if len(yts) == 1 else [f"output_{i}" for i in range(len(yts))]
    path = out_dir / "model.onnx"
    save_meta()

    t0 = time.time()
    try:
        # Not under torch.no_grad(): with autograd off, nn.MultiheadAttention (ViT) takes its
        # fast path, aten::_native_multi_head_attention, which the TorchScript exporter lacks.
        for p in model.parameters():
            p.requires_grad_(True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if exporter == "torchscript":
                kw = dict(dynamo=False, opset_version=opset, input_names=["input"],
                          output_names=out_names, do_constant_folding=True,
                          training=torch.onnx.TrainingMode.PRESERVE)
                if dynamic_batch:
                    kw["dynamic_axes"] = {n: {0: "batch"} for n in ["input"] + out_names}
                torch.onnx.export(model, (xt,), str(path), **kw)
            else:
                kw = dict(dynamo=True, opset_version=opset, input_names=["input"],
                          output_names=out_names)
                if dynamic_batch:
                    kw["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1, max=64)},)
                prog = torch.onnx.export(model, (xt,), **kw)
                prog.save(str(path))
    except Exception as e:  # noqa: BLE001
        meta["export_seconds"] = round(time.time() - t0, 2)
        meta["status"] = "export_failed"
        meta["errors"].append("export: " + first_line(e))
        meta["export_traceback_tail"] = traceback.format_exc()[-3000:]
        save_meta()
        return 1
    meta["export_seconds"] = round(time.time() - t0, 2)
    del model

    # External data: gather everything into one model.onnx.data (or none if < 2 GB).
    extra = sorted(p for p in out_dir.iterdir() if p.name not in ("model.onnx", "meta.json", "log.txt"))
    if extra:
        m = onnx.load(str(path))
        for p in extra:
            p.unlink()
        size = sum(t.ByteSize() for t in m.graph.initializer)
        if size < TWO_GB - (64 << 20):
            onnx.save_model(m, str(path))
            meta["external_data"] = None
        else:
            onnx.save_model(m, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                            location="model.onnx.data", size_threshold=1024)
            meta["external_data"] = "model.onnx.data"
        del m
    else:
        meta["external_data"] = None
    if reduced:
        # CI copies are committed: drop the dynamo exporter's per-node metadata_props (stack
        # traces, module paths: up to 60% of a small model) and doc strings. The graph is unchanged.
        m = onnx.load(str(path))
        stripped = 0
        for g in [m.graph] + [a.g for n in m.graph.node for a in n.attribute if a.type == onnx.AttributeProto.GRAPH]:
            for n in g.node:
                stripped += len(n.metadata_props) + bool(n.doc_string)
                del n.metadata_props[:]
                n.doc_string = ""
        if stripped:
            onnx.save_model(m, str(path))
        meta["stripped_node_metadata"] = stripped
        del m
    meta["model_bytes"] = path.stat().st_size + sum(
        p.stat().st_size for p in out_dir.iterdir() if p.name.startswith("model.onnx."))

    m = onnx.load(str(path), load_external_data=False)
    meta["opset"] = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None)
    meta["opset_imports"] = {o.domain or "ai.onnx": o.version for o in m.opset_import}
    meta["ir_version"] = m.ir_version
    meta["ops"] = op_histogram(m)
    meta["nodes"] = len(m.graph.node)
    meta["functions"] = [f.name for f in m.functions]
    init = {t.name for t in m.graph.initializer}
    meta["onnx_inputs"] = [{"name": i.name, "dims": dims_of(i)} for i in m.graph.input if i.name not in init]
    meta["onnx_outputs"] = [{"name": o.name, "dims": dims_of(o)} for o in m.graph.output]
    meta["initializers"] = len(m.graph.initializer)
    try:
        meta["forms"] = node_forms(m)
    except Exception as e:  # noqa: BLE001
        meta["errors"].append("forms: " + first_line(e))
    del m
    save_meta()
    try:
        onnx.checker.check_model(str(path))
        meta["checker"] = "ok"
    except Exception as e:  # noqa: BLE001
        meta["checker"] = "failed"
        meta["errors"].append("checker: " + first_line(e))

    t0 = time.time()
    try:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        feed_name = sess.get_inputs()[0].name
        ys = sess.run(None, {feed_name: x})
    except Exception as e:  # noqa: BLE001
        meta["ort_seconds"] = round(time.time() - t0, 2)
        meta["status"] = "ort_failed"
        meta["errors"].append("onnxruntime: " + first_line(e))
        np.save(out_dir / "input.npy", x)
        save_meta()
        return 1
    meta["ort_seconds"] = round(time.time() - t0, 2)
    np.save(out_dir / "input.npy", x)
    for i, y in enumerate(ys):
        np.save(out_dir / ("output.npy" if i == 0 else f"output_{i}.npy"), np.asarray(y))
    meta["input_shape"] = list(x.shape)
    meta["output_shapes"] = [list(np.shape(y)) for y in ys]
    meta["output_dtypes"] = [str(np.asarray(y).dtype) for y in ys]
    diffs = []
    for y, t in zip(ys, yts):
        t = t.numpy()
        if np.shape(y) != t.shape:
            diffs.append(None)
            continue
        scale = max(float(np.abs(t).max()), 1e-30)
        diffs.append(float(np.abs(np.asarray(y, dtype=np.float64) - t).max() / scale))
    meta["torch_vs_ort_rel_diff"] = diffs
    if y64 is not None and y64.shape == np.shape(ys[0]):
        np.save(out_dir / "output_f64.npy", y64)
        meta["ort_vs_f64_rel_diff"] = float(
            np.abs(np.asarray(ys[0], dtype=np.float64) - y64).max() / max(float(np.abs(y64).max()), 1e-30))
    meta["output_max_abs"] = float(np.abs(ys[0]).max())
    if len(ys) != len(yts):
        meta["errors"].append(f"outputs: onnx has {len(ys)}, torch {len(yts)}")
    bad = [d for d in diffs if d is None or not d <= 1e-3]
    if bad:
        meta["errors"].append(f"torch vs onnxruntime: relative diff {diffs}")
    meta["status"] = "ok" if not bad else "mismatch"
    if reduced and meta["model_bytes"] > CI_MAX_BYTES:
        meta["errors"].append(f"reduced model is {meta['model_bytes']} bytes (> {CI_MAX_BYTES})")
        meta["status"] = "too_large"
    save_meta()
    return 0


def first_line(e) -> str:
    s = f"{type(e).__name__}: {e}" if isinstance(e, BaseException) else str(e)
    for line in s.splitlines():
        if line.strip():
            return line.strip()[:400]
    return s[:400]


# ----------------------------------------------------------------------------------------
# Phase 1 driver
# ----------------------------------------------------------------------------------------


def limit_child(mem_gb: float):
    def fn():
        os.setsid()
        try:
            os.nice(19 - os.nice(0))
        except OSError:
            pass
        lim = int(mem_gb * 1024 ** 3)
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return fn


def child_env() -> dict:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = "1"
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent) + os.pathsep + env.get("PYTHONPATH", "")
    env["TORCH_HOME"] = "/nonexistent-no-downloads"
    env["PYTHONWARNINGS"] = "ignore"
    return env


def run_export(name: str, exporter: str, base: Path, args) -> dict:
    out_dir = base / name / exporter
    meta_path = out_dir / "meta.json"
    if meta_path.exists() and not args.force:
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("status") not in ("started",):
                return meta
        except Exception:
            pass
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, exporter, str(out_dir)]
    if args.reduced:
        cmd.append("--reduced")
    if args.dynamic_batch:
        cmd.append("--dynamic-batch")
    t0 = time.time()
    status = None
    with open(out_dir / "log.txt", "wb") as log:
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=child_env(),
                             preexec_fn=limit_child(args.mem_gb), cwd=str(ROOT))
        try:
            rc = p.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.wait()
            rc, status = None, "timeout"
    wall = round(time.time() - t0, 1)
    try:
        meta = json.loads(meta_path.read_text())
    except Exception:
        meta = {"model": name, "exporter": exporter, "errors": [], "status": "started"}
    meta["wall_seconds"] = wall
    meta["returncode"] = rc
    if status == "timeout":
        meta["status"] = "timeout"
        meta["errors"].append(f"timeout after {args.timeout} s (phase reached: {meta.get('status_before', 'see log')})")
    elif meta.get("status") == "started" or (rc not in (0, 1)):
        tail = log_tail(out_dir / "log.txt")
        meta["status"] = "crashed" if meta.get("status") in ("started", None) else meta["status"]
        meta["errors"].append(f"worker exit code {rc}: {tail}")
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True, default=str)
        f.write("\n")
    # A failed export may leave a partial model; keep it only if onnxruntime could run it.
    return meta


def log_tail(path: Path) -> str:
    try:
        lines = [l.strip() for l in path.read_text(errors="replace").splitlines() if l.strip()]
    except Exception:
        return "(no log)"
    for l in reversed(lines):
        if re.search(r"(Error|error|Killed|MemoryError|Exception|bad_alloc)", l):
            return l[:400]
    return lines[-1][:400] if lines else "(empty log)"


def phase1(names, args, base: Path) -> None:
    exporters = args.exporters.split(",")
    total = len(names) * len(exporters)
    k = 0
    t_start = time.time()
    for name in names:
        for exp in exporters:
            k += 1
            if shutil.disk_usage(str(base.parent)).free < args.min_free_gb * 1024 ** 3:
                print(f"[{k}/{total}] {name} {exp}: SKIPPED, less than {args.min_free_gb} GB free", flush=True)
                continue
            meta = run_export(name, exp, base, args)
            print(f"[{k}/{total}] {name:40s} {exp:11s} {meta.get('status'):14s} "
                  f"export {meta.get('export_seconds', '-')} s, wall {meta.get('wall_seconds', '-')} s, "
                  f"{meta.get('nodes', '-')} nodes  {'; '.join(meta.get('errors', []))[:200]}",
                  flush=True)
    print(f"phase 1 done in {time.time() - t_start:.0f} s", flush=True)


# ----------------------------------------------------------------------------------------
# Summary: ops_summary.json / .md
# ----------------------------------------------------------------------------------------


def load_metas(base: Path) -> list:
    metas = []
    for p in sorted(base.glob("*/*/meta.json")):
        try:
            metas.append(json.loads(p.read_text()))
        except Exception:
            pass
    return metas


def summarize(base: Path) -> dict:
    metas = load_metas(base)
    out = {"generated_by": "benches/coverage.py --summarize",
           "source": str(base.relative_to(ROOT)) if base.is_relative_to(ROOT) else str(base), "exporters": {},
           "lrpc_importer_ops": sorted(lrpc_importer_ops())}
    for exp in EXPORTERS:
        ms = [m for m in metas if m.get("exporter") == exp]
        exported = [m for m in ms if m.get("ops")]
        ops = defaultdict(lambda: {"models": 0, "nodes": 0, "model_list": []})
        forms = defaultdict(lambda: defaultdict(lambda: {"models": 0, "nodes": 0}))
        for m in exported:
            for op, c in m["ops"].items():
                ops[op]["models"] += 1
                ops[op]["nodes"] += c
                ops[op]["model_list"].append(m["model"])
            for op, fs in (m.get("forms") or {}).items():
                for f, c in fs.items():
                    forms[op][f]["models"] += 1
                    forms[op][f]["nodes"] += c
        status = Counter(m.get("status") for m in ms)
        out["exporters"][exp] = {
            "models_attempted": len(ms),
            "models_exported": len(exported),
            "status": dict(status),
            "failed": {m["model"]: "; ".join(m.get("errors", []))[:300] for m in ms if m.get("status") != "ok"},
            "ops": {op: dict(v) for op, v in sorted(ops.items(), key=lambda kv: (-kv[1]["models"], kv[0]))},
            "forms": {op: {f: dict(v) for f, v in sorted(fs.items(), key=lambda kv: (-kv[1]["models"], kv[0]))}
                      for op, fs in sorted(forms.items())},
            "export_seconds_total": round(sum(m.get("export_seconds", 0) or 0 for m in ms), 1),
            "wall_seconds_total": round(sum(m.get("wall_seconds", 0) or 0 for m in ms), 1),
        }
    with open(base / "ops_summary.json", "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    (base / "ops_summary.md").write_text(summary_md(out))
    return out


def summary_md(s: dict) -> str:
    ex = list(s["exporters"])
    L = ["# ONNX ops emitted for torchvision models", "",
         f"Made by `benches/coverage.py --summarize` from `{s.get('source', 'fixtures/coverage')}/*/*/meta.json`.",
         "Counts are models (nodes in parentheses) in which an op / form appears.", ""]
    for e in ex:
        d = s["exporters"][e]
        L.append(f"* **{e}** (opset {EXPORTERS[e]}): {d['models_exported']} of {d['models_attempted']} "
                 f"exported; status {d['status']}; export time {d['export_seconds_total']} s, "
                 f"worker wall time {d['wall_seconds_total']} s")
    known = set(s.get("lrpc_importer_ops") or [])
    L += ["", "## Op histogram", "",
          "Last column: whether lrpc's importer table (src/onnx/ops/mod.rs) names the op when this was made.", "",
          "| op | " + " | ".join(ex) + " | lrpc |", "|---|" + "---|" * (len(ex) + 1)]
    allops = sorted({op for e in ex for op in s["exporters"][e]["ops"]},
                    key=lambda op: (-sum(s["exporters"][e]["ops"].get(op, {}).get("models", 0) for e in ex), op))
    for op in allops:
        cells = []
        for e in ex:
            v = s["exporters"][e]["ops"].get(op)
            cells.append(f"{v['models']} ({v['nodes']})" if v else "")
        L.append(f"| {op} | " + " | ".join(cells) + f" | {'yes' if op in known else '**no**'} |")
    L += ["", "## Ops used by few models", ""]
    for e in ex:
        rare = [(op, v) for op, v in s["exporters"][e]["ops"].items() if v["models"] <= 8]
        if rare:
            L.append(f"* {e}: " + "; ".join(f"{op}: {', '.join(v['model_list'])}" for op, v in rare))
    L += ["", "## Forms (attributes and input kinds) of interest", "",
          "`const` = initializer or Constant output, `computed` = produced by another node.", ""]
    keyops = ["Resize", "Upsample", "Pad", "Split", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceL2",
              "ReduceProd", "ReduceMin", "Einsum", "Gelu", "LayerNormalization", "GroupNormalization",
              "InstanceNormalization", "Conv", "MaxPool", "AveragePool", "Softmax", "Gemm", "MatMul",
              "Reshape", "Gather", "Slice", "Clip", "Squeeze", "Unsqueeze", "BatchNormalization",
              "HardSigmoid", "Cast", "Concat", "Transpose", "Expand", "Where", "Pow", "Dropout", "(domain)"]
    for op in keyops:
        rows = []
        fs = sorted({f for e in ex for f in s["exporters"][e]["forms"].get(op, {})})
        if not fs:
            continue
        L += [f"### {op}", "", "| form | " + " | ".join(ex) + " |", "|---|" + "---|" * len(ex)]
        for f in sorted(fs, key=lambda f: -sum(s["exporters"][e]["forms"].get(op, {}).get(f, {}).get("models", 0) for e in ex)):
            cells = []
            for e in ex:
                v = s["exporters"][e]["forms"].get(op, {}).get(f)
                cells.append(f"{v['models']} ({v['nodes']})" if v else "")
            rows.append(f"| `{f}` | " + " | ".join(cells) + " |")
        L += rows[:40]
        if len(rows) > 40:
            L.append(f"| ... {len(rows) - 40} more forms in ops_summary.json | |" + " |" * (len(ex) - 1))
        L.append("")
    L += ["## Failures", ""]
    for e in ex:
        for mname, err in s["exporters"][e]["failed"].items():
            L.append(f"* {e} / {mname}: {err}")
    return "\n".join(L) + "\n"


# ----------------------------------------------------------------------------------------
# Phase 2: lrpc on every exported model
# ----------------------------------------------------------------------------------------

LRPC_METHODS = ["epsilon", "epsilon-plus-flat", "gradient"]


def lrpc_importer_ops() -> set:
    """Op types lrpc's importer table names (src/onnx/ops/mod.rs), empty if not found."""
    try:
        src = (ROOT / "src" / "onnx" / "ops" / "mod.rs").read_text()
    except OSError:
        return set()
    return set(re.findall(r'op_type:\s*"([A-Za-z0-9_]+)"', src))


def normalise_error(e: str) -> str:
    """Group errors: drop paths, node names and numbers."""
    e = re.sub(r"^error:\s*", "", e)
    e = re.sub(r"\S*model\.onnx:\s*", "", e)
    e = re.sub(r"node '[^']*'", "node N", e)
    e = re.sub(r"\d+(\.\d+)?(e-?\d+)?", "N", e)
    return e[:140]


def run_lrpc(cmd, timeout, cwd) -> tuple:
    """-> (status, first error line, stdout, seconds)."""
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout, cwd=cwd,
                           preexec_fn=lambda: os.nice(19 - os.nice(0)))
    except subprocess.TimeoutExpired:
        return "timeout", f"timeout after {timeout} s", "", round(time.time() - t0, 1)
    except OSError as e:
        return "fail", first_line(e), "", 0.0
    dt = round(time.time() - t0, 1)
    out = p.stdout.decode(errors="replace")
    if p.returncode != 0:
        err = p.stderr.decode(errors="replace")
        lines = [l.strip() for l in err.splitlines() if l.strip()]
        if p.returncode < 0:
            return "crash", f"signal {-p.returncode}" + (f": {lines[-1][:300]}" if lines else ""), out, dt
        msg = next((l for l in lines if "error" in l.lower()), lines[0] if lines else f"exit {p.returncode}")
        return "fail", msg[:400], out, dt
    return "ok", "", out, dt


# How much farther from the float64 forward than onnxruntime lrpc may be when the two float32
# engines differ by more than --rtol (see phase2).
F64_SLACK = 1.5


# Forward statuses that count as a match (see phase2).
FORWARD_OK = ("ok", "ok-f64", "ok-spread")


def ort_spread(model: Path, x: Path, reference) -> float:
    """How far onnxruntime's outputs at optimisation levels none and basic are from its default
    run (`reference`, output.npy), and from each other: max of the three rel_diffs."""
    import numpy as np
    import onnxruntime as ort

    outs = [np.asarray(reference)]
    data = np.load(x)
    for level in (ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC):
        so = ort.SessionOptions()
        so.graph_optimization_level = level
        so.intra_op_num_threads = 1
        s = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
        outs.append(s.run(None, {s.get_inputs()[0].name: data})[0].reshape(outs[0].shape))
    return max(rel_diff(outs[i], outs[j]) for i in range(3) for j in range(3) if i != j)


def rel_diff(a, b) -> float:
    """max |a - b| / max |b|, in float64."""
    import numpy as np

    b = np.asarray(b, dtype=np.float64)
    return float(np.abs(np.asarray(a, dtype=np.float64) - b).max() / max(float(np.abs(b).max()), 1e-30))


def phase2(names, args, base: Path, report: Path) -> None:
    import numpy as np

    lrpc = str(Path(args.lrpc).resolve())
    rows = []
    work = Path(args.scratch)
    work.mkdir(parents=True, exist_ok=True)
    jobs = []
    for name in names:
        for exp in args.exporters.split(","):
            d = base / name / exp
            if (d / "meta.json").exists():
                jobs.append((name, exp, d))
    thr = ["--threads", str(args.lrpc_threads)] if args.lrpc_threads else []
    known_ops = lrpc_importer_ops()
    for k, (name, exp, d) in enumerate(jobs, 1):
        meta = json.loads((d / "meta.json").read_text())
        row = {"model": name, "exporter": exp, "opset": meta.get("opset"), "export": meta.get("status"),
               "import": "-", "forward": "-", "explain": {}, "error": "", "seconds": {}}
        if known_ops:
            row["ops_missing"] = sorted(op for op in (meta.get("ops") or {}) if op not in known_ops)
        model, x, y = d / "model.onnx", d / "input.npy", d / "output.npy"
        if not (model.exists() and x.exists() and y.exists()):
            row["error"] = (("model removed: " + meta["model_removed"]) if meta.get("model_removed")
                            else "not exported: " + "; ".join(meta.get("errors", []))[:200])
            rows.append(row)
            print(f"[{k}/{len(jobs)}] {name} {exp}: not exported", flush=True)
            continue
        st, err, _, dt = run_lrpc([lrpc, "inspect", str(model)], args.lrpc_timeout, str(work))
        row["import"], row["seconds"]["import"] = st, dt
        if st != "ok":
            row["error"] = err
        else:
            out = work / "out.npy"
            out.unlink(missing_ok=True)
            st, err, _, dt = run_lrpc([lrpc, "run", str(model), "--input", str(x), "--output", str(out)] + thr,
                                      args.lrpc_timeout, str(work))
            row["seconds"]["forward"] = dt
            if st == "ok":
                try:
                    a, b = np.load(out), np.load(y)
                    if a.shape != b.shape and a.size == b.size:
                        a = a.reshape(b.shape)
                    if a.shape != b.shape:
                        st, err = "wrong", f"output shape {list(a.shape)} != {list(b.shape)}"
                    else:
                        rel = rel_diff(a, b)
                        row["forward_rel_diff"] = rel
                        t = d / "output_f64.npy"
                        if not rel <= args.rtol and t.exists():
                            # Past 1e-4 of onnxruntime, lrpc still passes when it is no farther
                            # from the float64 truth than onnxruntime is (within F64_SLACK).
                            t = np.load(t)
                            ours, theirs = rel_diff(a, t), rel_diff(b, t)
                            row["forward_f64"] = {"lrpc": ours, "onnxruntime": theirs}
                            if ours <= max(args.rtol, F64_SLACK * theirs):
                                st = "ok-f64"
                        if not rel <= args.rtol and st == "ok":
                            # Deep random-weight nets amplify float32 round-off until
                            # onnxruntime disagrees with itself across its optimisation levels
                            # by more than rtol; then lrpc passes within F64_SLACK of that spread.
                            spread = ort_spread(model, x, b)
                            row["onnxruntime_spread"] = spread
                            if rel <= F64_SLACK * spread:
                                st = "ok-spread"
                        if st == "ok" and not rel <= args.rtol:
                            st, err = "wrong", f"max abs diff / max abs = {rel:.3g} > {args.rtol:g}"
                            if "forward_f64" in row:
                                f = row["forward_f64"]
                                err += f" (against float64: lrpc {f['lrpc']:.3g}, onnxruntime {f['onnxruntime']:.3g})"
                            if "onnxruntime_spread" in row:
                                err += f" (onnxruntime against itself: {row['onnxruntime_spread']:.3g})"
                except Exception as e:  # noqa: BLE001
                    st, err = "wrong", "reading output: " + first_line(e)
            row["forward"] = st
            if st not in FORWARD_OK:
                row["error"] = err
            for m in LRPC_METHODS:
                r = work / "r.npy"
                r.unlink(missing_ok=True)
                st, err, out_s, dt = run_lrpc([lrpc, "explain", str(model), "--input", str(x), "--method", m,
                                               "--output", str(r), "--json"] + thr, args.lrpc_timeout, str(work))
                row["seconds"][m] = dt
                if st == "ok":
                    try:
                        rr = np.load(r)
                        if not np.all(np.isfinite(rr)):
                            st, err = "wrong", f"{m}: relevance not finite"
                        elif not np.any(rr != 0):
                            st, err = "wrong", f"{m}: relevance all zero"
                        json.loads(out_s)
                    except Exception as e:  # noqa: BLE001
                        st, err = "wrong", f"{m}: " + first_line(e)
                row["explain"][m] = st
                if st != "ok" and not row["error"]:
                    row["error"] = err if err.startswith(m) else f"{m}: {err}"
        rows.append(row)
        print(f"[{k}/{len(jobs)}] {name:40s} {exp:11s} import {row['import']:7s} forward {row['forward']:7s} "
              f"explain {row['explain']}  {row['error'][:150]}", flush=True)
    write_report(rows, report, args, base)


def write_report(rows, report: Path, args, base: Path) -> None:
    rows = sorted(rows, key=lambda r: (r["model"], r["exporter"]))
    def cell(s):
        return {"ok": "ok", "ok-f64": "ok (f64)", "ok-spread": "ok (spread)", "-": "-"}.get(s, f"**{s}**")

    def expl(r):
        if not r["explain"]:
            return "-"
        if all(v == "ok" for v in r["explain"].values()):
            return "ok"
        return ", ".join(f"{m}: {v}" for m, v in r["explain"].items())

    L = ["# lrpc coverage of torchvision models", "",
         f"Made by `benches/coverage.py --lrpc` from `{base.relative_to(ROOT) if base.is_relative_to(ROOT) else base}` "
         f"on {time.strftime('%Y-%m-%d')}: `lrpc inspect` (import), `lrpc run` (forward, max abs diff / "
         f"max abs <= {args.rtol:g} against onnxruntime's output.npy; *ok (f64)*: farther than that from "
         f"onnxruntime but no farther than {F64_SLACK:g} times onnxruntime's own distance from the float64 "
         f"forward in torch, output_f64.npy; *ok (spread)*: onnxruntime's own outputs at its optimisation "
         f"levels none, basic and all differ from each other by more than {args.rtol:g}, and lrpc is within "
         f"{F64_SLACK:g} times that spread of the default one), `lrpc explain --method M` for "
         f"{', '.join(LRPC_METHODS)} (relevance finite and not all zero). Timeout {args.lrpc_timeout} s per command.",
         ""]
    n = len(rows)
    for exp in args.exporters.split(","):
        rs = [r for r in rows if r["exporter"] == exp]
        if not rs:
            continue
        imp = sum(r["import"] == "ok" for r in rs)
        fwd = sum(r["forward"] in FORWARD_OK for r in rs)
        f64 = sum(r["forward"] == "ok-f64" for r in rs)
        spread = sum(r["forward"] == "ok-spread" for r in rs)
        exl = sum(bool(r["explain"]) and all(v == "ok" for v in r["explain"].values()) for r in rs)
        expd = sum(r["export"] in ("ok", "mismatch") for r in rs)
        L.append(f"* **{exp}**: {len(rs)} models, {expd} exported, {imp} import, {fwd} forward, "
                 f"{exl} explain (all {len(LRPC_METHODS)} methods); {f64} of the forwards pass by the float64 rule, {spread} by the spread rule")
    errs = Counter(normalise_error(r["error"]) for r in rows if r["error"])
    L += ["", "Most common errors:", ""]
    for e, c in errs.most_common(20):
        L.append(f"* {c} x `{e}`")
    known = lrpc_importer_ops()
    if known:
        lack = defaultdict(lambda: Counter())
        for r in rows:
            for op in r.get("ops_missing", []):
                lack[op][r["exporter"]] += 1
        exps = args.exporters.split(",")
        L += ["", f"Ops of the exported models that lrpc's importer (src/onnx/ops/mod.rs, {len(known)} ops) "
              "lacks, by number of models that use them:", "",
              "| op | " + " | ".join(exps) + " |", "|---|" + "---|" * len(exps)]
        for op, c in sorted(lack.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])):
            L.append(f"| {op} | " + " | ".join(str(c.get(e, 0)) for e in exps) + " |")
    L += ["", "| model | opset | exporter | import | forward | explain | error | ops lrpc lacks |",
          "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        err = r["error"].replace("|", "\\|").replace("\n", " ")[:200]
        if r["forward"] == "ok-f64" and not err:
            f = r["forward_f64"]
            err = (f"forward: {r['forward_rel_diff']:.2g} from onnxruntime; from float64 lrpc {f['lrpc']:.2g}, "
                   f"onnxruntime {f['onnxruntime']:.2g}")
        if r["forward"] == "ok-spread" and not err:
            err = (f"forward: {r['forward_rel_diff']:.2g} from onnxruntime, which differs from itself across "
                   f"optimisation levels by {r['onnxruntime_spread']:.2g}")
        L.append(f"| {r['model']} | {r['opset'] or '-'} | {r['exporter']} | {cell(r['import'])} | "
                 f"{cell(r['forward'])} | {expl(r)} | {err} | {' '.join(r.get('ops_missing', []))} |")
    L.append("")
    L.append(f"{n} rows.")
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(L) + "\n")
    with open(report.with_suffix(".json"), "w") as f:
        json.dump(rows, f, indent=1)
        f.write("\n")
    print(f"wrote {report} and {report.with_suffix('.json')}")


# ----------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", help="comma list (default: all); see --list")
    ap.add_argument("--exporters", default="torchscript,dynamo")
    ap.add_argument("--reduced", action="store_true", help="CI-sized variants into fixtures/coverage_ci/")
    ap.add_argument("--out", help="output folder (default fixtures/coverage or fixtures/coverage_ci)")
    ap.add_argument("--force", action="store_true", help="re-export even if meta.json exists")
    ap.add_argument("--dynamic-batch", action="store_true", help="symbolic batch axis")
    ap.add_argument("--timeout", type=float, default=2400, help="seconds per export worker")
    ap.add_argument("--mem-gb", type=float, default=16, help="address-space limit per worker (GB)")
    ap.add_argument("--min-free-gb", type=float, default=12, help="skip exports when the disk has less free")
    ap.add_argument("--summarize", action="store_true", help="only write ops_summary.{json,md}")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--lrpc", help="phase 2: path to the lrpc binary")
    ap.add_argument("--lrpc-timeout", type=float, default=900, help="seconds per lrpc command")
    ap.add_argument("--lrpc-threads", type=int, default=1, help="--threads for lrpc run/explain (0: lrpc's default)")
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--report", help="phase 2 report (default docs/coverage.md, docs/coverage_ci.md with --reduced)")
    ap.add_argument("--scratch", default="/tmp/lrpc-coverage", help="phase 2 scratch folder")
    ap.add_argument("--worker", nargs=3, metavar=("MODEL", "EXPORTER", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        name, exp, d = args.worker
        return worker(name, exp, Path(d), args.reduced, args.dynamic_batch)

    base = Path(args.out) if args.out else (CI_DIR if args.reduced else FULL_DIR)
    specs = model_names()
    if args.list:
        for n, s in specs.items():
            print(n, s["kind"], s["input"])
        return 0
    if args.summarize:
        summarize(base)
        print(f"wrote {base / 'ops_summary.json'} and .md")
        return 0
    if args.models:
        names = args.models.split(",")
        unknown = [n for n in names if n not in specs]
        if unknown:
            print(f"unknown models: {unknown} (see --list)", file=sys.stderr)
            return 2
    else:
        names = sorted(specs, key=lambda n: approx_params(n, specs[n]))  # small ones first
        if args.reduced:
            import coverage_reduced as red

            names = [n for n in names if n in red.REDUCED]
    for e in args.exporters.split(","):
        if e not in EXPORTERS:
            print(f"unknown exporter {e!r}: {list(EXPORTERS)}", file=sys.stderr)
            return 2
    if args.lrpc:
        report = Path(args.report) if args.report else ROOT / "docs" / ("coverage_ci.md" if args.reduced else "coverage.md")
        phase2(names, args, base, report)
        return 0
    base.mkdir(parents=True, exist_ok=True)
    phase1(names, args, base)
    summarize(base)
    print(f"wrote {base / 'ops_summary.json'} and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
