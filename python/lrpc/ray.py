"""Explanations of a whole data set on Ray Data.

:func:`explain_dataset` adds the columns ``relevance``, ``logits`` and ``target`` to a
``ray.data.Dataset`` with ``map_batches`` and a callable class: one explainer per Ray actor,
loaded once when the actor starts. An ONNX model is compiled once, on the driver, into an
artifact whose bytes go to the actors through Ray's object store, so on a multi-node cluster
the model file only has to exist where the driver runs; an artifact given as ``model`` is
shipped the same way. Each actor runs as many lrpc threads as it has CPUs (``num_cpus``).

On a cluster: ``ray start --head`` on one machine, ``ray start --address HEAD:6379`` on the
others, then ``ray.init(address="auto")`` in the driver before calling these functions. The
stored machine code of an artifact assumes the CPU features of the machine that compiled it;
on a cluster of other CPUs pass ``recompile=True`` (each actor compiles the kernels again for
its own CPU).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Optional, Union

import numpy as np

import json

from . import Explainer, LrpcError, _lrpc, _report, evaluate

__all__ = ["evaluate_dataset", "explain_dataset"]


def _artifact_bytes(model: Union[str, os.PathLike], threads: int, batch: int, method_params: dict) -> bytes:
    """The artifact for ``model`` (compiled here when it is an ONNX file), as bytes."""
    path = os.fspath(model)
    if path.lower().endswith(".lrpx"):
        if method_params:
            raise LrpcError(
                f"{path}: {', '.join(sorted(method_params))}: the artifact fixed this when it was compiled; "
                "compile the model again to change it"
            )
        with open(path, "rb") as f:
            return f.read()
    e = Explainer(path, batch=batch, threads=threads, **method_params)
    with tempfile.TemporaryDirectory(prefix="lrpc-ray-") as d:
        out = os.path.join(d, "explainer.lrpx")
        e.save(out)
        with open(out, "rb") as f:
            return f.read()


class _Explain:
    """One Ray actor's explainer (built once per actor, from the shipped artifact)."""

    def __init__(self, artifact: list, threads: int, column: str, target: Any, target_column: Optional[str], recompile: bool):
        import ray

        data = ray.get(artifact[0])
        # The artifact is mapped, so it must stay on disk while the actor lives.
        self._dir = tempfile.TemporaryDirectory(prefix="lrpc-actor-")
        path = os.path.join(self._dir.name, "explainer.lrpx")
        with open(path, "wb") as f:
            f.write(data)
        self.explainer = Explainer(path, threads=threads, recompile=recompile)
        self.column = column
        self.target = target
        self.target_column = target_column

    def __call__(self, batch: dict) -> dict:
        if self.column not in batch:
            raise LrpcError(f"explain_dataset: the data set has no column '{self.column}' (it has {', '.join(batch)})")
        x = np.stack(batch[self.column]) if batch[self.column].dtype == object else batch[self.column]
        target = self.target
        if self.target_column is not None:
            target = np.asarray(batch[self.target_column], dtype=np.int64)
        out = self.explainer.explain(x, target=target)
        batch = dict(batch)
        batch["relevance"] = out.relevance
        batch["logits"] = out.logits
        batch["target"] = out.targets
        return batch


def _cluster_cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def explain_dataset(
    ds: Any,
    model: Union[str, os.PathLike],
    method: Optional[str] = None,
    column: str = "image",
    batch_size: int = 32,
    concurrency: Optional[int] = None,
    *,
    target: Optional[int] = None,
    target_column: Optional[str] = None,
    num_cpus: int = 1,
    recompile: bool = False,
    **method_params: Any,
) -> Any:
    """Explains every row of ``ds`` (a ``ray.data.Dataset``) and returns the data set with the
    columns ``relevance`` (the input's shape), ``logits`` ((classes,)) and ``target`` (int64)
    added.

    ``column`` holds the inputs (one sample per row, float32 or token ids); ``target`` fixes the
    class for every row and ``target_column`` takes each row's class from a column (default:
    each row's arg-max). ``batch_size`` rows go to each call (and the explainer is compiled for
    that batch); ``concurrency`` actors run (default: the cluster's CPUs / ``num_cpus``), each
    with ``num_cpus`` CPUs and as many lrpc threads. ``method`` and ``method_params`` (``low``,
    ``high``, ``epsilon``, ``gamma``, ``rules``, ...) are those of :class:`lrpc.Explainer`.

    Ray Data runs blocks in parallel; to keep the rows in input order, set
    ``ray.data.DataContext.get_current().execution_options.preserve_order = True``.
    """
    import ray

    if target is not None and target_column is not None:
        raise LrpcError("explain_dataset: give target or target_column, not both")
    if batch_size < 1 or num_cpus < 1:
        raise LrpcError("explain_dataset: batch_size and num_cpus must be positive")
    if method is not None:
        method_params = dict(method_params, method=method)
    data = _artifact_bytes(model, num_cpus, batch_size, method_params)
    ref = ray.put(data)
    if concurrency is None:
        concurrency = max(1, _cluster_cpus() // num_cpus)
    return ds.map_batches(
        _Explain,
        fn_constructor_args=([ref], num_cpus, column, target, target_column, recompile),
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=concurrency,
        num_cpus=num_cpus,
    )


_ROW = "__lrpc_row"


class _Evaluate:
    """One Ray task's part of the study: per-sample curves of its rows, placed in the whole."""

    def __init__(self, model: str, column: str, label_column: Optional[str], study: dict):
        self.model, self.column, self.label_column, self.study = model, column, label_column, study

    def __call__(self, batch: dict) -> dict:
        if self.column not in batch:
            raise LrpcError(f"evaluate_dataset: the data set has no column '{self.column}' (it has {', '.join(batch)})")
        x = batch[self.column]
        x = np.stack(x) if x.dtype == object else x
        labels = batch[self.label_column] if self.label_column is not None else None
        rows = np.asarray(batch[_ROW], dtype=np.int64)
        r = evaluate(self.model, x, labels, ids=rows, samples=True, **self.study)
        kept = np.asarray(r["kept"], dtype=np.int64)
        out = {_ROW: rows[kept]}
        for j, m in enumerate(r["methods"]):
            out[f"drop_{j}"] = m["samples"]["drop"]
            out[f"scores_{j}"] = m["samples"]["scores"]
            out[f"right_{j}"] = m["samples"]["right"]
        return out


def evaluate_dataset(
    ds: Any,
    model: Union[str, os.PathLike],
    methods: Any = ("epsilon-plus", "random"),
    column: str = "image",
    label_column: Optional[str] = None,
    batch_size: int = 256,
    concurrency: Optional[int] = None,
    *,
    num_cpus: int = 1,
    explain_batch: int = 32,
    **study: Any,
) -> dict:
    """The region perturbation study (:func:`lrpc.evaluate`) over a ``ray.data.Dataset``, each
    block of ``batch_size`` rows evaluated by a Ray task with ``num_cpus`` threads, the AOPC
    aggregated across blocks: the per-sample curves are gathered in row order and summarised
    once, so the report equals :func:`lrpc.evaluate` on the whole data set with
    ``batch=explain_batch`` (the noise of each row is that of its index in the whole; the
    uniform noise's value range and the mean perturbation's channel means are the whole's).

    ``study`` takes :func:`lrpc.evaluate`'s other arguments (``patch``, ``steps``, ``order``,
    ``perturb``, ``score``, ``target``, ``correct_only``, ``seed``, method parameters). The
    model (an ONNX file: each task compiles its explainers) must be readable where the tasks
    run (a shared path on a cluster). Token-id data needs ``steps``.
    """
    import ray

    if batch_size < 1 or num_cpus < 1 or explain_batch < 1:
        raise LrpcError("evaluate_dataset: batch_size, num_cpus and explain_batch must be positive")
    if os.fspath(model).lower().endswith(".lrpx"):
        raise LrpcError(
            f"{os.fspath(model)}: evaluate takes the ONNX model: it compiles an explainer per method, and an artifact fixes one"
        )
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    methods = list(methods)
    n = ds.count()
    if n == 0:
        raise LrpcError("evaluate_dataset: the data set is empty")
    if _ROW in ds.columns():
        raise LrpcError(f"evaluate_dataset: the column name '{_ROW}' is lrpc's")
    # Each row's index in the whole (its noise), materialised before the actors start: the
    # actors hold the CPUs, so upstream tasks running beside them could starve.
    # zip pairs rows by position, which holds only with the order preserved.
    ctx = ray.data.DataContext.get_current()
    kept_order = ctx.execution_options.preserve_order
    ctx.execution_options.preserve_order = True
    try:
        ds = ds.zip(ray.data.range(n).rename_columns({"id": _ROW})).materialize()
    finally:
        ctx.execution_options.preserve_order = kept_order
    first = ds.take(1)[0][column] if column in ds.columns() else None
    if first is None:
        raise LrpcError(f"evaluate_dataset: the data set has no column '{column}' (it has {', '.join(ds.columns())})")
    tokens = np.asarray(first).dtype.kind in "iu"
    if tokens and study.get("steps") is None:
        raise LrpcError("evaluate_dataset: token ids need steps= (the fewest words differ between blocks)")
    study = dict(study, batch=explain_batch, threads=num_cpus, methods=methods)
    perturb = study.get("perturb") or ("delete" if tokens else "uniform")
    if not tokens and perturb in ("uniform", "mean"):
        def stats(b):
            x = np.asarray(np.stack(b[column]) if b[column].dtype == object else b[column], dtype=np.float64)
            axes = (0,) + tuple(range(2, x.ndim)) if x.ndim > 2 else (0,)
            return {
                "lo": [x.min()],
                "hi": [x.max()],
                "sums": [x.sum(axis=axes)],
                "count": [x.size / (x.shape[1] if x.ndim > 2 else 1)],
            }

        parts = ds.select_columns([column]).map_batches(stats, batch_format="numpy").take_all()
        study.setdefault("value_range", (float(np.float32(min(p["lo"] for p in parts))), float(np.float32(max(p["hi"] for p in parts)))))
        if perturb == "mean":
            sums = np.sum([np.atleast_1d(p["sums"]) for p in parts], axis=0)
            study.setdefault("means", list(sums / sum(p["count"] for p in parts)))
    out = ds.map_batches(
        _Evaluate,
        fn_constructor_args=(os.fspath(model), column, label_column, study),
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=concurrency if concurrency is not None else max(1, _cluster_cpus() // num_cpus),
        num_cpus=num_cpus,
    )
    rows = {}
    for b in out.iter_batches(batch_size=None, batch_format="numpy"):
        for k, row in enumerate(b[_ROW]):
            rows[int(row)] = {key: b[key][k] for key in b if key != _ROW}
    order = sorted(rows)
    report = {"n": len(order), "steps": None, "patch": None, "methods": [], "kept": order}
    for j, name in enumerate(methods):
        samples = {
            "drop": [rows[r][f"drop_{j}"].tolist() for r in order],
            "scores": [rows[r][f"scores_{j}"].tolist() for r in order],
            "right": [rows[r][f"right_{j}"].tolist() for r in order],
        }
        report["methods"].append(json.loads(_lrpc.summarise(name, json.dumps(samples))))
    if order:
        report["steps"] = len(rows[order[0]]["drop_0"]) - 1
    report["patch"] = study.get("patch") or (1 if tokens else 9)
    return _report(report, study.get("order", "morf"), study.get("score", "logit"))
