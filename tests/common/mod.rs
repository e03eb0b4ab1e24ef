//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use lrpc::ir::Tensor;

/// The repository root (tests run with it as working directory).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `fixtures/<case>/<file>`.
pub fn fixture(case: &str, file: &str) -> PathBuf {
    root().join("fixtures").join(case).join(file)
}

pub fn npy(path: &Path) -> Tensor {
    lrpc::io::npy::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// max |a - b| / max |b|: the relative error measure of design.md section 6.
pub fn relative_error(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.shape(), b.shape(), "shapes differ");
    let (a, b) = (a.f32s().unwrap(), b.f32s().unwrap());
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    let scale = b.iter().map(|y| y.abs()).fold(0.0f32, f32::max);
    if scale == 0.0 { diff } else { diff / scale }
}

/// Asserts `a` matches the reference `b` within `tol` relative error.
pub fn assert_close(a: &Tensor, b: &Tensor, tol: f32, what: &str) {
    let err = relative_error(a, b);
    assert!(err <= tol, "{what}: relative error {err:e} exceeds {tol:e}");
}
