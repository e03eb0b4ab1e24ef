"""lrpc: Layer-wise Relevance Propagation, compiled.

An :class:`Explainer` compiles an ONNX model with one relevance method (an LRP composite or a
gradient method) into native code, or loads an ahead-of-time artifact (``lrpc compile``), and
explains numpy arrays::

    import numpy as np, lrpc
    e = lrpc.Explainer("model.onnx", method="epsilon-gamma-box", low=-3.0, high=3.0)
    out = e.explain(np.random.rand(8, 3, 32, 32).astype(np.float32))
    out.relevance.shape, out.logits.shape, out.targets
    png = lrpc.heatmap(out.relevance[0])

Errors are raised as :class:`LrpcError` with the command line's one-line messages. The GIL is
released while lrpc computes, so Python threads explain in parallel on one explainer.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from typing import Any, Mapping, Optional, Sequence, Union

import json

import numpy as np

from . import _lrpc
from ._lrpc import LrpcError

__all__ = [
    "Explainer",
    "Explanation",
    "LrpcError",
    "context_use",
    "evaluate",
    "heatmap",
    "methods",
    "region_shares",
    "__version__",
]

__version__: str = _lrpc.__version__

Bound = Union[float, Sequence[float]]
Target = Union[None, int, Sequence[int], np.ndarray]


@dataclass(frozen=True)
class Explanation:
    """What :meth:`Explainer.explain` returns.

    ``relevance`` has the input's shape (for token ids: ``(N, seq)``, the relevance per token,
    with the embedding vectors' relevance in ``embedding``); ``logits`` is ``(N, classes)``
    (the pre-softmax scores when the model ends in Softmax); ``targets`` the explained class of
    each sample, ``(N,)`` int64.
    """

    relevance: np.ndarray
    logits: np.ndarray
    targets: np.ndarray
    embedding: Optional[np.ndarray] = None


def _array(x: Any, dtype: Any, what: str) -> np.ndarray:
    """``x`` as a C-contiguous array of ``dtype``: no copy when it already is one."""
    if isinstance(x, np.ndarray) and x.dtype == dtype and x.flags.c_contiguous:
        return x
    try:
        a = np.asarray(x)
    except Exception as e:  # numpy's own message says what could not be converted
        raise LrpcError(f"{what}: cannot be read as an array ({e})") from None
    if a.dtype.kind not in "biuf":
        raise LrpcError(f"{what}: holds {a.dtype} values; give a numeric array")
    if np.dtype(dtype).kind in "iu" and a.dtype.kind == "f":
        raise LrpcError(f"{what}: holds floats, but the model takes integer token ids")
    return np.ascontiguousarray(a, dtype=dtype)


class Explainer:
    """A model compiled with one relevance method, or a loaded artifact.

    Parameters
    ----------
    model:
        An ONNX file, or an explainer artifact (``.lrpx``, made by ``lrpc compile`` or
        :meth:`save`), which fixes the method, its parameters and the batch: giving any of
        them with an artifact raises :class:`LrpcError`.
    method:
        An LRP composite (``epsilon``, ``epsilon-plus`` (default), ``epsilon-plus-flat``,
        ``epsilon-alpha2-beta1``, ``epsilon-alpha2-beta1-flat``, ``epsilon-gamma-box``,
        ``excitation-backprop``, ``attn-lrp``, ``attn-lrp-gamma``, ``cp-lrp`` for transformers) or a gradient method (``gradient``, ``gradient-x-input``,
        ``guided-backprop``, ``deconvnet``, ``smoothgrad``, ``integrated-gradients``); see
        :func:`methods`.
    low, high:
        The z-box bounds: one number, or one per input channel.
    epsilon, gamma, alpha, bias_factor:
        The rules' parameters (``None``: the method's default).
    rules:
        Rules forced on nodes whose name matches a glob, ``{"features.0*": "flat"}`` (rules:
        epsilon, zplus, alpha-beta, gamma, zbox, flat, wsquare, norm, pass, gradient).
    batch:
        Samples per compiled run for a model whose batch axis is symbolic (default 1; a fixed
        batch is the model's own). Any number of samples is explained, in runs of this size.
    dims:
        Sizes of other symbolic input dimensions, by name (``{"seq": 64}``).
    explain_input:
        For a model with several inputs, which one to explain (default: the first float input,
        else the token ids feeding a Gather); the others are given to :meth:`explain` by name.
    threads:
        Worker threads (default: every available core).
    interpreter:
        Run the reference interpreter instead of compiled code (slow: the oracle).
    recompile:
        With an artifact: compile its kernels again for this CPU instead of mapping the stored
        machine code (for a CPU without the features the stored code assumes).
    """

    def __init__(
        self,
        model: Union[str, PathLike],
        method: Optional[str] = None,
        low: Optional[Bound] = None,
        high: Optional[Bound] = None,
        epsilon: Optional[float] = None,
        gamma: Optional[float] = None,
        rules: Optional[Mapping[str, str]] = None,
        batch: Optional[int] = None,
        threads: Optional[int] = None,
        *,
        alpha: Optional[float] = None,
        bias_factor: Optional[float] = None,
        dims: Optional[Mapping[str, int]] = None,
        explain_input: Optional[str] = None,
        input_shapes: Optional[Mapping[str, Sequence[int]]] = None,
        interpreter: bool = False,
        recompile: bool = False,
    ) -> None:
        for name, v in (("batch", batch), ("threads", threads)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
                raise LrpcError(f"{name} must be a positive integer, got {v!r}")
        self._model = str(model)
        self._native = _lrpc.NativeExplainer(
            self._model,
            method=method,
            epsilon=epsilon,
            gamma=gamma,
            alpha=alpha,
            bias_factor=bias_factor,
            low=low,
            high=high,
            rules=list(rules.items()) if rules else None,
            batch=batch,
            dims=dict(dims) if dims else None,
            explain_input=explain_input,
            input_shapes={k: list(v) for k, v in input_shapes.items()} if input_shapes else None,
            threads=threads,
            interpreter=interpreter,
            recompile=recompile,
        )

    # -- properties ---------------------------------------------------------------------------

    @property
    def model(self) -> str:
        """The path the explainer was made from."""
        return self._model

    @property
    def method(self) -> str:
        """The method's name."""
        return self._native.method

    @property
    def input_shape(self) -> tuple:
        """The explained input's shape per compiled run, batch included."""
        return tuple(self._native.input_shape)

    @property
    def input_dtype(self) -> np.dtype:
        """float32, or int64 for token ids."""
        return np.dtype(self._native.input_dtype)

    @property
    def input_name(self) -> str:
        return self._native.input_name

    @property
    def other_inputs(self) -> list:
        """The model's other inputs as (name, dtype, shape): give them to :meth:`explain`."""
        return [(n, np.dtype(d), tuple(s)) for n, d, s in self._native.other_inputs]

    @property
    def classes(self) -> int:
        """Scores per sample (the explained output's size)."""
        return self._native.classes

    @property
    def batch(self) -> int:
        """Samples per compiled run."""
        return self._native.batch

    @property
    def threads(self) -> int:
        return self._native.threads

    def __repr__(self) -> str:
        return (
            f"lrpc.Explainer({self._model!r}, method={self.method!r}, "
            f"input_shape={self.input_shape}, classes={self.classes})"
        )

    # -- work ---------------------------------------------------------------------------------

    def _samples(self, x: Any) -> tuple:
        """``x`` as a batch (C-contiguous, the input's dtype) and whether it was one sample."""
        a = _array(x, self.input_dtype, "input")
        shape = self.input_shape
        if not self._native.batched:
            return a, False
        if a.ndim == len(shape) - 1:
            return a[np.newaxis], True
        if a.ndim != len(shape) or tuple(a.shape[1:]) != tuple(shape[1:]):
            raise LrpcError(
                f"input: has shape {a.shape}, but {self._model} takes (N, {', '.join(map(str, shape[1:]))}) "
                f"or one sample {tuple(shape[1:])}"
            )
        return a, False

    def _targets(self, target: Target, n: int) -> Optional[list]:
        if target is None:
            return None
        if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
            return [int(target)] * n
        try:
            t = [int(v) for v in np.asarray(target).reshape(-1)]
        except (TypeError, ValueError):
            raise LrpcError(f"target: {target!r} is neither a class index nor a sequence of them") from None
        if len(t) != n:
            raise LrpcError(f"target: {len(t)} targets for {n} samples")
        return t

    def _others(self, inputs: Optional[Mapping[str, Any]]) -> Optional[dict]:
        if not inputs:
            return None
        kinds = {n: d for n, d, _ in self.other_inputs}
        out = {}
        for name, v in inputs.items():
            dtype = kinds.get(name, np.dtype(np.float32))
            out[name] = _array(v, dtype, f"input '{name}'")
        return out

    def explain(self, x: Any, target: Target = None, inputs: Optional[Mapping[str, Any]] = None) -> Explanation:
        """Explains ``x``: a batch ``(N, ...)`` or one sample without the batch axis.

        ``target``: ``None`` (each sample's arg-max), a class index for all samples, or one per
        sample. ``inputs``: the data of the model's other inputs, by name (batch included).
        """
        a, single = self._samples(x)
        targets = self._targets(target, a.shape[0] if self._native.batched else 1)
        relevance, logits, chosen, tokens = self._native.explain(a, targets, self._others(inputs))
        embedding = None
        if tokens is not None:
            embedding, relevance = relevance, tokens
        if single:
            relevance = relevance[0]
            embedding = embedding[0] if embedding is not None else None
        return Explanation(
            relevance=relevance,
            logits=logits,
            targets=np.asarray(chosen, dtype=np.int64),
            embedding=embedding,
        )

    def forward(self, x: Any, inputs: Optional[Mapping[str, Any]] = None) -> np.ndarray:
        """The logits of ``x`` ((N, classes)), by the explainer's own forward pass."""
        a, _ = self._samples(x)
        return self._native.forward(a, self._others(inputs))

    def save(self, path: Union[str, PathLike]) -> None:
        """Saves the compiled explainer as an artifact (complete, or not written at all)."""
        self._native.save(str(path))

    def __reduce__(self):
        raise LrpcError(
            "an Explainer holds compiled code and cannot be pickled; save() it as an artifact and load that"
        )


def heatmap(relevance: Any, cmap: str = "bwr", min_size: int = 224) -> np.ndarray:
    """The heatmap of one sample's relevance, as the command line's ``--heatmap`` draws it.

    ``relevance``: ``(H, W)``, ``(C, H, W)`` or ``(1, C, H, W)``, summed over channels and
    normalised to its largest magnitude; ``cmap``: bwr, coldnhot, seismic or gray; each value
    becomes a square block so the longer side has at least ``min_size`` pixels (1: one pixel
    a value). Returns ``(H', W', 3)`` uint8.
    """
    return _lrpc.heatmap(_array(relevance, np.float32, "relevance"), cmap, int(min_size))


def methods() -> list:
    """The names ``method=`` accepts."""
    return list(_lrpc.methods())


def _rank(methods: list, lower_better: bool) -> None:
    order = sorted(range(len(methods)), key=lambda i: methods[i]["aopc"], reverse=not lower_better)
    for r, i in enumerate(order):
        methods[i]["rank"] = r + 1


def _report(raw: dict, order: str, score: str) -> dict:
    for m in raw["methods"]:
        for k in ("curve", "curve_se", "scores", "accuracy"):
            if m.get(k) is not None:
                m[k] = np.asarray(m[k], dtype=np.float64)
        if "samples" in m:
            m["samples"] = {
                "drop": np.asarray(m["samples"]["drop"], dtype=np.float32),
                "scores": np.asarray(m["samples"]["scores"], dtype=np.float32),
                "right": np.asarray(m["samples"]["right"], dtype=bool),
            }
    raw["score"], raw["order"] = score, order
    _rank(raw["methods"], lower_better=order == "lerf")
    return raw


def evaluate(
    model: Union[str, PathLike],
    x: Any,
    labels: Any = None,
    methods: Sequence[str] = ("epsilon-plus", "random"),
    patch: Optional[int] = None,
    steps: Optional[int] = None,
    order: str = "morf",
    perturb: Optional[str] = None,
    score: str = "logit",
    target: str = "top",
    correct_only: bool = False,
    seed: int = 0,
    pad_id: int = 0,
    batch: Optional[int] = None,
    threads: Optional[int] = None,
    *,
    samples: bool = False,
    ids: Any = None,
    value_range: Optional[tuple] = None,
    means: Optional[Sequence[float]] = None,
    **method_params: Any,
) -> dict:
    """The region perturbation study of ``lrpc evaluate`` on stacked samples ``x`` (N, ...).

    ``methods``: method names, ``sensitivity`` (squared gradient) and ``random``; ``patch``
    (9; tokens 1), ``steps`` (100, at most the regions), ``order`` (morf, lerf; arras for
    token ids), ``perturb`` (uniform, mean, zero; token ids: delete or ``id:N``), ``score``
    (logit, prob), ``target`` (top, label), ``correct_only`` and ``seed`` as the command line's
    flags; ``method_params`` (``low``, ``high``, ``epsilon``, ...) as :class:`Explainer`'s
    (epsilon-gamma-box's bounds default to the data's range).

    Returns ``{"n", "steps", "patch", "score", "order", "methods": [{"method", "aopc", "se",
    "rank", "curve", "curve_se", "scores", "accuracy"}]}`` with the curves as arrays; with
    ``samples=True`` each method also has ``samples`` (per-sample ``drop`` f(x0) - f(xk),
    ``scores`` and ``right``), which :func:`lrpc.ray.evaluate_dataset` combines. ``ids``,
    ``value_range`` and ``means`` place a part of a data set in the whole (the noise of sample
    ``ids[k]``, the whole's range and channel means).
    """
    dtype = np.int64 if np.asarray(x).dtype.kind in "iu" else np.float32
    a = _array(x, dtype, "data")
    if a.ndim < 2:
        raise LrpcError(f"data: has shape {a.shape}; give stacked samples (N, ...)")
    y = None
    if labels is not None:
        y = [int(v) for v in _array(labels, np.int64, "labels").reshape(-1)]
    known = {"epsilon", "gamma", "alpha", "bias_factor", "low", "high", "rules"}
    unknown = sorted(set(method_params) - known)
    if unknown:
        raise LrpcError(f"evaluate: unknown parameter {unknown[0]!r} (known: {', '.join(sorted(known))})")
    if "rules" in method_params and method_params["rules"] is not None:
        method_params["rules"] = list(dict(method_params["rules"]).items())
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    if not methods:
        raise LrpcError("evaluate: methods names no method")
    raw = json.loads(
        _lrpc.evaluate(
            str(model),
            a,
            y,
            list(methods),
            patch,
            steps,
            order,
            perturb,
            score,
            target,
            bool(correct_only),
            int(seed),
            int(pad_id),
            None if ids is None else [int(v) for v in np.asarray(ids).reshape(-1)],
            None if value_range is None else (float(value_range[0]), float(value_range[1])),
            None if means is None else [float(v) for v in means],
            batch,
            threads,
            bool(samples),
            **method_params,
        )
    )
    return _report(raw, order, score)


def context_use(relevance: Any, box: Sequence[int]) -> dict:
    """Relevance inside and outside ``box`` (x0, y0, x1, y1 in pixels, end exclusive) of one
    sample's relevance, summed over channels, and the context use outside / inside (signed and
    positive, also per pixel), as ``lrpc regions --boxes`` reports it."""
    return json.loads(_lrpc.context_use(_array(relevance, np.float32, "relevance"), [int(v) for v in box]))


def region_shares(relevance: Any, mask: Any, labels: Optional[Sequence[int]] = None) -> dict:
    """The share of one sample's relevance (summed over channels) on each labelled region of
    ``mask`` ((H, W) integers; default: every non-zero label), signed and positive, as
    ``lrpc regions --masks`` reports it: ``{label: {"signed", "positive"}}``."""
    m = _array(mask, np.uint8, "mask")
    if labels is None:
        labels = sorted(int(v) for v in np.unique(m) if v != 0)
    pairs = json.loads(_lrpc.region_shares(_array(relevance, np.float32, "relevance"), m, [int(v) for v in labels]))
    return {int(label): ratio for label, ratio in pairs}
