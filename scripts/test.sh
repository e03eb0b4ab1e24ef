#!/usr/bin/env bash
# Every test: the Rust suite, then the Python package's (built with maturin into a venv under
# target/pyenv, which this makes on first use from PyPI: maturin, numpy, pytest, ray).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build && cargo test

venv=target/pyenv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r python/requirements-test.txt
VIRTUAL_ENV="$PWD/$venv" PATH="$PWD/$venv/bin:$PATH" "$venv/bin/maturin" develop --quiet -m python/Cargo.toml
"$venv/bin/python" -m pytest python/tests -q
