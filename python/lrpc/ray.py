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

from . import Explainer, LrpcError

__all__ = ["explain_dataset"]


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
