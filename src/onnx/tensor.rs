//! TensorProto -> IR tensor: raw_data (little-endian) or the typed fields, external data files
//! (kept inside the model's folder), and the conversions lrpc makes: every float type to f32, every
//! integer type (and bool) to i64.

use std::path::Path;

use super::proto::TensorProto;
use super::proto::tensor_proto::DataType;
use crate::ir::Tensor;

/// Converts a TensorProto; `dir` is the model's folder, for external data. Errors are plain
/// reasons; the caller names the tensor and file.
pub fn to_tensor(t: &TensorProto, dir: Option<&Path>) -> Result<Tensor, String> {
    let shape: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension in {:?}", t.dims)))
        .collect::<Result<_, _>>()?;
    let n = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("dimensions {:?} overflow", t.dims))?;
    let dtype = DataType::try_from(t.data_type)
        .map_err(|_| format!("unknown data type {}", t.data_type))?;
    let external;
    let raw: Option<&[u8]> = if t.data_location == 1 {
        external = read_external(t, dir, n, dtype)?;
        Some(&external)
    } else if !t.raw_data.is_empty() || n == 0 {
        Some(&t.raw_data)
    } else {
        None
    };
    match raw {
        Some(bytes) => from_raw(bytes, dtype, shape, n),
        None => from_typed(t, dtype, shape, n),
    }
}

fn element_size(dtype: DataType) -> Result<usize, String> {
    Ok(match dtype {
        DataType::Float | DataType::Int32 | DataType::Uint32 => 4,
        DataType::Double | DataType::Int64 | DataType::Uint64 => 8,
        DataType::Float16 | DataType::Bfloat16 | DataType::Int16 | DataType::Uint16 => 2,
        DataType::Int8 | DataType::Uint8 | DataType::Bool => 1,
        other => {
            return Err(format!(
                "data type {} is not supported",
                other.as_str_name()
            ));
        }
    })
}

fn from_raw(bytes: &[u8], dtype: DataType, shape: Vec<usize>, n: usize) -> Result<Tensor, String> {
    let size = element_size(dtype)?;
    if bytes.len() != n * size {
        return Err(format!(
            "raw_data has {} bytes, shape {shape:?} of {} needs {}",
            bytes.len(),
            dtype.as_str_name(),
            n * size
        ));
    }
    let f32s = |f: fn(&[u8]) -> f32| bytes.chunks_exact(size).map(f).collect::<Vec<f32>>();
    let i64s = |f: fn(&[u8]) -> i64| bytes.chunks_exact(size).map(f).collect::<Vec<i64>>();
    // chunks_exact(size) hands out slices of exactly `size` bytes, so the array conversions hold.
    let t = match dtype {
        DataType::Float if cfg!(target_endian = "little") => {
            // A copy at memory speed: the file's little-endian floats are this machine's.
            let mut v = vec![0f32; bytes.len() / 4];
            bytemuck::cast_slice_mut::<f32, u8>(&mut v).copy_from_slice(bytes);
            Tensor::from_f32(shape, v)?
        }
        DataType::Float => Tensor::from_f32(shape, f32s(|b| f32::from_le_bytes(arr(b))))?,
        DataType::Double => Tensor::from_f32(shape, f32s(|b| f64::from_le_bytes(arr(b)) as f32))?,
        DataType::Float16 => {
            Tensor::from_f32(shape, f32s(|b| half::f16::from_le_bytes(arr(b)).to_f32()))?
        }
        DataType::Bfloat16 => {
            Tensor::from_f32(shape, f32s(|b| half::bf16::from_le_bytes(arr(b)).to_f32()))?
        }
        DataType::Int64 => Tensor::from_i64(shape, i64s(|b| i64::from_le_bytes(arr(b))))?,
        DataType::Uint64 => Tensor::from_i64(shape, i64s(|b| u64::from_le_bytes(arr(b)) as i64))?,
        DataType::Int32 => Tensor::from_i64(shape, i64s(|b| i32::from_le_bytes(arr(b)) as i64))?,
        DataType::Uint32 => Tensor::from_i64(shape, i64s(|b| u32::from_le_bytes(arr(b)) as i64))?,
        DataType::Int16 => Tensor::from_i64(shape, i64s(|b| i16::from_le_bytes(arr(b)) as i64))?,
        DataType::Uint16 => Tensor::from_i64(shape, i64s(|b| u16::from_le_bytes(arr(b)) as i64))?,
        DataType::Int8 => Tensor::from_i64(shape, i64s(|b| b[0] as i8 as i64))?,
        DataType::Uint8 | DataType::Bool => Tensor::from_i64(shape, i64s(|b| b[0] as i64))?,
        other => {
            return Err(format!(
                "data type {} is not supported",
                other.as_str_name()
            ));
        }
    };
    Ok(t)
}

fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(b);
    a
}

fn from_typed(
    t: &TensorProto,
    dtype: DataType,
    shape: Vec<usize>,
    n: usize,
) -> Result<Tensor, String> {
    let check = |len: usize, field: &str| {
        if len == n {
            Ok(())
        } else {
            Err(format!(
                "{field} has {len} values, shape {shape:?} needs {n}"
            ))
        }
    };
    let t = match dtype {
        DataType::Float => {
            check(t.float_data.len(), "float_data")?;
            Tensor::from_f32(shape.clone(), t.float_data.clone())?
        }
        DataType::Double => {
            check(t.double_data.len(), "double_data")?;
            Tensor::from_f32(
                shape.clone(),
                t.double_data.iter().map(|&x| x as f32).collect(),
            )?
        }
        // float16/bfloat16 travel as their bit patterns in int32_data.
        DataType::Float16 => {
            check(t.int32_data.len(), "int32_data")?;
            let v = t
                .int32_data
                .iter()
                .map(|&b| half::f16::from_bits(b as u16).to_f32());
            Tensor::from_f32(shape.clone(), v.collect())?
        }
        DataType::Bfloat16 => {
            check(t.int32_data.len(), "int32_data")?;
            let v = t
                .int32_data
                .iter()
                .map(|&b| half::bf16::from_bits(b as u16).to_f32());
            Tensor::from_f32(shape.clone(), v.collect())?
        }
        DataType::Int64 => {
            check(t.int64_data.len(), "int64_data")?;
            Tensor::from_i64(shape.clone(), t.int64_data.clone())?
        }
        DataType::Uint64 | DataType::Uint32 => {
            check(t.uint64_data.len(), "uint64_data")?;
            Tensor::from_i64(
                shape.clone(),
                t.uint64_data.iter().map(|&x| x as i64).collect(),
            )?
        }
        DataType::Int32
        | DataType::Int16
        | DataType::Int8
        | DataType::Uint16
        | DataType::Uint8
        | DataType::Bool => {
            check(t.int32_data.len(), "int32_data")?;
            Tensor::from_i64(
                shape.clone(),
                t.int32_data.iter().map(|&x| x as i64).collect(),
            )?
        }
        other => {
            return Err(format!(
                "data type {} is not supported",
                other.as_str_name()
            ));
        }
    };
    Ok(t)
}

/// Reads an external-data tensor's bytes, refusing paths that leave the model's folder.
fn read_external(
    t: &TensorProto,
    dir: Option<&Path>,
    n: usize,
    dtype: DataType,
) -> Result<Vec<u8>, String> {
    let entry = |key: &str| {
        t.external_data
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.as_str())
    };
    let location = entry("location").ok_or("external data without a location")?;
    let dir =
        dir.ok_or("external data needs the model's folder, but the model was given as bytes")?;
    let rel = Path::new(location);
    if rel.is_absolute()
        || rel.components().any(|c| {
            !matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        })
    {
        return Err(format!(
            "external data location '{location}' leaves the model's folder"
        ));
    }
    let parse = |key: &str| -> Result<Option<u64>, String> {
        entry(key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("external data {key} '{v}' is not a number"))
            })
            .transpose()
    };
    let offset = parse("offset")?.unwrap_or(0);
    let expected = (n * element_size(dtype)?) as u64;
    let length = parse("length")?.unwrap_or(expected);
    if length != expected {
        return Err(format!(
            "external data length {length} does not match the {expected} bytes the shape needs"
        ));
    }
    let path = dir.join(rel);
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let end = offset
        .checked_add(length)
        .filter(|&e| e <= bytes.len() as u64)
        .ok_or_else(|| {
            format!(
                "external data {}: bytes {offset}..+{length} lie past the end",
                path.display()
            )
        })?;
    Ok(bytes[offset as usize..end as usize].to_vec())
}

impl From<crate::error::OpError> for String {
    fn from(e: crate::error::OpError) -> String {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::StringStringEntryProto;

    fn proto(dtype: DataType, dims: &[i64]) -> TensorProto {
        TensorProto {
            dims: dims.to_vec(),
            data_type: dtype as i32,
            ..Default::default()
        }
    }

    #[test]
    fn every_float_type_becomes_f32_from_raw_and_typed_fields() {
        let want = [1.5f32, -2.0, 0.25];
        let mut t = proto(DataType::Double, &[3]);
        t.raw_data = want
            .iter()
            .flat_map(|&v| (v as f64).to_le_bytes())
            .collect();
        assert_eq!(to_tensor(&t, None).unwrap().f32s().unwrap(), want);
        let mut t = proto(DataType::Double, &[3]);
        t.double_data = want.iter().map(|&v| v as f64).collect();
        assert_eq!(to_tensor(&t, None).unwrap().f32s().unwrap(), want);
        let mut t = proto(DataType::Float16, &[3]);
        t.raw_data = want
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect();
        assert_eq!(to_tensor(&t, None).unwrap().f32s().unwrap(), want);
        let mut t = proto(DataType::Float16, &[3]);
        t.int32_data = want
            .iter()
            .map(|&v| half::f16::from_f32(v).to_bits() as i32)
            .collect();
        assert_eq!(to_tensor(&t, None).unwrap().f32s().unwrap(), want);
        let mut t = proto(DataType::Bfloat16, &[3]);
        t.raw_data = want
            .iter()
            .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
            .collect();
        assert_eq!(to_tensor(&t, None).unwrap().f32s().unwrap(), want);
        let mut t = proto(DataType::Float, &[1, 3]);
        t.float_data = want.to_vec();
        let t = to_tensor(&t, None).unwrap();
        assert_eq!(
            (t.shape(), t.f32s().unwrap()),
            (&[1usize, 3][..], &want[..])
        );
    }

    #[test]
    fn integer_types_become_i64() {
        let mut t = proto(DataType::Int32, &[2]);
        t.raw_data = [-7i32, 9].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(to_tensor(&t, None).unwrap().i64s().unwrap(), &[-7, 9]);
        let mut t = proto(DataType::Int64, &[2]);
        t.int64_data = vec![3, -4];
        assert_eq!(to_tensor(&t, None).unwrap().i64s().unwrap(), &[3, -4]);
        let mut t = proto(DataType::Uint8, &[2]);
        t.raw_data = vec![200u8, 1].into();
        assert_eq!(to_tensor(&t, None).unwrap().i64s().unwrap(), &[200, 1]);
    }

    #[test]
    fn malformed_tensors_are_refused() {
        let mut t = proto(DataType::Float, &[4]);
        t.raw_data = vec![0u8; 12].into();
        assert!(
            to_tensor(&t, None)
                .unwrap_err()
                .contains("raw_data has 12 bytes")
        );
        let mut t = proto(DataType::Float, &[2]);
        t.float_data = vec![1.0];
        assert!(
            to_tensor(&t, None)
                .unwrap_err()
                .contains("float_data has 1 values")
        );
        let t = proto(DataType::Float, &[-1]);
        assert!(
            to_tensor(&t, None)
                .unwrap_err()
                .contains("negative dimension")
        );
        let t = proto(DataType::String, &[1]);
        assert!(to_tensor(&t, None).unwrap_err().contains("not supported"));
    }

    #[test]
    fn external_data_stays_inside_the_model_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("w.bin"), [0u8, 0, 128, 63, 0, 0, 0, 64]).unwrap();
        let external = |location: &str| {
            let mut t = proto(DataType::Float, &[2]);
            t.data_location = 1;
            t.external_data = vec![StringStringEntryProto {
                key: "location".into(),
                value: location.into(),
            }];
            to_tensor(&t, Some(dir.path()))
        };
        assert_eq!(external("w.bin").unwrap().f32s().unwrap(), &[1.0, 2.0]);
        for escape in ["../w.bin", "/etc/passwd", "sub/../../w.bin"] {
            let err = external(escape).unwrap_err();
            assert!(err.contains("leaves the model's folder"), "{escape}: {err}");
        }
        assert!(external("missing.bin").unwrap_err().contains("missing.bin"));
    }
}
