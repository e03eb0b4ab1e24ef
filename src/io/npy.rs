//! `.npy` files (NumPy's format) as IR tensors: float32 and float64 in (f64 is narrowed) as f32,
//! signed and unsigned integers and bools in as i64 (token ids, masks, lengths); float32 out.

use std::path::Path;

use crate::error::{Error, Result};
use npyz::{AutoSerialize, WriterBuilder};

use crate::ir::Tensor;

fn input_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Input {
        what: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Reads a `.npy` file of float32 / float64 values, or integers / bools, in C or Fortran order
/// (numpy saves a transposed array in Fortran order).
pub fn read(path: &Path) -> Result<Tensor> {
    let bytes = std::fs::read(path).map_err(|cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    let npy = npyz::NpyFile::new(&bytes[..])
        .map_err(|e| input_error(path, format!("not a .npy file: {e}")))?;
    if npy.order() == npyz::Order::C {
        return read_elements(path, npy, false);
    }
    // Fortran order is C order of the reversed shape: read that, then reverse the axes.
    let t = read_elements(path, npy, true)?;
    let rank = t.shape().len();
    let perm = crate::ir::ops::Transpose {
        perm: Some((0..rank).rev().collect()),
    };
    crate::interp::eval(&crate::ir::Op::Transpose(perm), &[&t]).map_err(|e| input_error(path, e.0))
}

/// The elements in file order, as a tensor of the header's shape (reversed, if `reversed`).
fn read_elements(path: &Path, npy: npyz::NpyFile<&[u8]>, reversed: bool) -> Result<Tensor> {
    let mut shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    if reversed {
        shape.reverse();
    }
    let dtype = npy.dtype();
    let ints = |v: Result<Vec<i64>, std::io::Error>| -> Result<Tensor> {
        let v = v.map_err(|e| input_error(path, e.to_string()))?;
        Tensor::from_i64(shape.clone(), v).map_err(|e| input_error(path, e.0))
    };
    macro_rules! widen {
        ($t:ty) => {
            if dtype == <$t>::default_dtype() {
                return ints(
                    npy.into_vec::<$t>()
                        .map(|v| v.into_iter().map(|x| x as i64).collect()),
                );
            }
        };
    }
    widen!(i64);
    widen!(i32);
    widen!(i16);
    widen!(i8);
    widen!(u8);
    widen!(u16);
    widen!(u32);
    if dtype == u64::default_dtype() {
        let v = npy
            .into_vec::<u64>()
            .map_err(|e| input_error(path, e.to_string()))?;
        let v = v
            .into_iter()
            .map(|x| {
                i64::try_from(x).map_err(|_| input_error(path, format!("holds {x}, beyond i64")))
            })
            .collect::<Result<Vec<i64>>>()?;
        return Tensor::from_i64(shape, v).map_err(|e| input_error(path, e.0));
    }
    if dtype == bool::default_dtype() {
        return ints(
            npy.into_vec::<bool>()
                .map(|v| v.into_iter().map(i64::from).collect()),
        );
    }
    let data: Vec<f32> = if dtype == f32::default_dtype() {
        npy.into_vec::<f32>()
            .map_err(|e| input_error(path, e.to_string()))?
    } else if dtype == f64::default_dtype() {
        npy.into_vec::<f64>()
            .map_err(|e| input_error(path, e.to_string()))?
            .into_iter()
            .map(|v| v as f32)
            .collect()
    } else {
        let descr = dtype.descr();
        return Err(input_error(
            path,
            format!("has dtype {descr}; lrpc reads floats (<f4, <f8), integers and bools"),
        ));
    };
    Tensor::from_f32(shape, data).map_err(|e| input_error(path, e.0))
}

/// Writes a tensor as a `.npy` file (float32, or int64 for integer tensors).
pub fn write(path: &Path, t: &Tensor) -> Result<()> {
    let shape: Vec<u64> = t.shape().iter().map(|&d| d as u64).collect();
    match t.data() {
        crate::ir::TensorData::F32(data) => super::write_atomically(path, |file| {
            let mut writer = npyz::WriteOptions::<f32>::new()
                .default_dtype()
                .shape(&shape)
                .writer(file)
                .begin_nd()?;
            writer.extend(data.iter().copied())?;
            writer.finish()
        }),
        // Integer tensors (token ids, labels) as int64.
        crate::ir::TensorData::I64(data) => super::write_atomically(path, |file| {
            let mut writer = npyz::WriteOptions::<i64>::new()
                .default_dtype()
                .shape(&shape)
                .writer(file)
                .begin_nd()?;
            writer.extend(data.iter().copied())?;
            writer.finish()
        }),
    }
}
