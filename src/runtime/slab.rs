//! Read-only element storage for a program's constants and index tables: owned by the program,
//! shared with the model that produced it (weights are never copied), mapped from an artifact
//! file, or linked into the binary (an explainer object file). Kernels only ever see a slice.

use std::sync::Arc;

use crate::ir::Tensor;

/// Elements of type `T` from one of the places a program's data can live.
#[derive(Clone)]
pub struct Slab<T: 'static> {
    source: Source<T>,
}

#[derive(Clone)]
enum Source<T: 'static> {
    Owned(Arc<[T]>),
    Shared(Arc<dyn AsRef<[T]> + Send + Sync>),
    Static(&'static [T]),
}

impl<T: 'static> std::fmt::Debug for Slab<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slab({} elements)", self.len())
    }
}

impl<T: 'static> Slab<T> {
    /// Elements the slab owns.
    pub fn owned(v: Vec<T>) -> Slab<T> {
        Slab {
            source: Source::Owned(v.into()),
        }
    }

    /// Elements owned elsewhere and kept alive by the slab (a mapped file, a tensor).
    pub fn shared(data: Arc<dyn AsRef<[T]> + Send + Sync>) -> Slab<T> {
        Slab {
            source: Source::Shared(data),
        }
    }

    /// Elements in the binary's own data (an explainer linked from an object file).
    pub fn from_static(data: &'static [T]) -> Slab<T> {
        Slab {
            source: Source::Static(data),
        }
    }

    pub fn as_slice(&self) -> &[T] {
        match &self.source {
            Source::Owned(v) => v,
            Source::Shared(s) => s.as_ref().as_ref(),
            Source::Static(s) => s,
        }
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// Whether both slabs hold the very same elements (one allocation), so an artifact stores
    /// them once.
    pub fn same_storage(&self, other: &Slab<T>) -> bool {
        let (a, b) = (self.as_slice(), other.as_slice());
        a.len() == b.len() && std::ptr::eq(a.as_ptr(), b.as_ptr())
    }
}

/// An f32 tensor seen as its elements.
struct TensorElements(Arc<Tensor>);

impl AsRef<[f32]> for TensorElements {
    fn as_ref(&self) -> &[f32] {
        self.0.f32s().unwrap_or(&[])
    }
}

impl Slab<f32> {
    /// The elements of an f32 tensor, shared with whoever else holds it; a tensor of another
    /// dtype is converted (a copy).
    pub fn from_tensor(t: &Arc<Tensor>) -> Slab<f32> {
        if t.f32s().is_ok() {
            Slab::shared(Arc::new(TensorElements(Arc::clone(t))))
        } else {
            let converted = t.cast(crate::ir::DType::F32);
            Slab::owned(converted.f32s().map(<[f32]>::to_vec).unwrap_or_default())
        }
    }
}
