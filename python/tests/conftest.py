"""Shared fixtures: the repository's models and the lrpc command line (the Rust results the
package must reproduce bitwise)."""

import os
import pathlib
import subprocess

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"


def lrpc_bin() -> pathlib.Path:
    """The command line built by `cargo build` (LRPC_BIN overrides)."""
    p = pathlib.Path(os.environ.get("LRPC_BIN", ROOT / "target" / "debug" / "lrpc"))
    if not p.exists():
        pytest.fail(f"{p} is missing: run `cargo build` first (or set LRPC_BIN)")
    return p


def cli(*args: str) -> subprocess.CompletedProcess:
    """Runs the command line; fails the test with its stderr when it fails."""
    r = subprocess.run([str(lrpc_bin()), *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"lrpc {' '.join(map(str, args))} failed: {r.stderr}")
    return r


@pytest.fixture(scope="session")
def shapes_model() -> pathlib.Path:
    return FIXTURES / "shapes" / "model.onnx"


@pytest.fixture(scope="session")
def shapes_data() -> tuple:
    """The shapes evaluation set (normalised images, labels): fixtures/shapes_data."""
    x = np.load(FIXTURES / "shapes_data" / "data.npy")
    y = np.load(FIXTURES / "shapes_data" / "labels.npy")
    return x, y


@pytest.fixture(scope="session")
def shapes_batch(shapes_data) -> np.ndarray:
    """Five samples of the shapes set."""
    return np.ascontiguousarray(shapes_data[0][:5], dtype=np.float32)
