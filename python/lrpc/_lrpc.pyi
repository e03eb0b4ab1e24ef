"""Type stubs of lrpc's native module (python/src/lib.rs); use the wrappers in `lrpc`."""

from typing import Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

__version__: str

class LrpcError(Exception):
    """An lrpc error: the one-line message the command line prints."""

class NativeExplainer:
    def __init__(
        self,
        model: str,
        method: Optional[str] = None,
        epsilon: Optional[float] = None,
        gamma: Optional[float] = None,
        alpha: Optional[float] = None,
        bias_factor: Optional[float] = None,
        low: Union[None, float, Sequence[float]] = None,
        high: Union[None, float, Sequence[float]] = None,
        rules: Optional[list[tuple[str, str]]] = None,
        batch: Optional[int] = None,
        dims: Optional[dict[str, int]] = None,
        explain_input: Optional[str] = None,
        input_shapes: Optional[dict[str, list[int]]] = None,
        threads: Optional[int] = None,
        interpreter: bool = False,
        recompile: bool = False,
    ) -> None: ...
    def explain(
        self,
        x: npt.NDArray[Union[np.float32, np.int64]],
        targets: Optional[list[int]] = None,
        inputs: Optional[dict[str, npt.NDArray[Union[np.float32, np.int64]]]] = None,
    ) -> tuple[
        npt.NDArray[np.float32],
        npt.NDArray[np.float32],
        list[int],
        Optional[npt.NDArray[np.float32]],
    ]: ...
    def forward(
        self,
        x: npt.NDArray[Union[np.float32, np.int64]],
        inputs: Optional[dict[str, npt.NDArray[Union[np.float32, np.int64]]]] = None,
    ) -> npt.NDArray[np.float32]: ...
    def save(self, path: str) -> None: ...
    @property
    def method(self) -> str: ...
    @property
    def input_shape(self) -> list[int]: ...
    @property
    def input_dtype(self) -> str: ...
    @property
    def input_name(self) -> str: ...
    @property
    def other_inputs(self) -> list[tuple[str, str, list[int]]]: ...
    @property
    def classes(self) -> int: ...
    @property
    def batch(self) -> int: ...
    @property
    def threads(self) -> int: ...
    @property
    def relevance_shape(self) -> list[int]: ...
    @property
    def batched(self) -> bool: ...

def heatmap(relevance: npt.NDArray[np.float32], cmap: str = "bwr", min_size: int = 224) -> npt.NDArray[np.uint8]: ...
def methods() -> list[str]: ...
