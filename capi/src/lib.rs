//! The C ABI of lrpc. An explainer comes from an artifact (`lrpc compile ... -o x.lrpx`,
//! `lrpc_explainer_load`) or from an explainer object file linked into the program (`lrpc
//! compile ... --emit object`, `lrpc_explainer_from_object`); either way one handle serves any
//! number of threads calling `lrpc_explain` at once (each call takes its own arena from the
//! explainer's pool). Errors are reported as a return value (NULL or non-zero) and one line of
//! text from `lrpc_last_error`, per thread; nothing panics across the boundary.
//!
//! Every function here is an FFI entry point: the `unsafe` blocks turn the caller's pointers
//! into Rust references after checking them for NULL, and each says what the C contract
//! (documented on the function) guarantees.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use lrpc::{Explainer, LoadOptions};

/// An explainer: opaque to C.
pub struct LrpcExplainer {
    inner: Explainer,
}

/// One program's kernels in an explainer object file.
#[repr(C)]
pub struct LrpcObjectProgram {
    /// The kernels' entry addresses, in the program's kernel order.
    pub kernels: *const *const c_void,
    pub count: u64,
}

/// The entry symbol of an explainer object file (declared by the header `lrpc compile --emit
/// object` writes beside it).
#[repr(C)]
pub struct LrpcObject {
    /// The layout version of this structure (1).
    pub abi: u32,
    /// How many programs `programs` lists.
    pub program_count: u32,
    /// The embedded artifact.
    pub artifact: *const u8,
    pub artifact_len: u64,
    pub programs: *const LrpcObjectProgram,
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(message: String) {
    // One line: the error type's messages are one line, but a path may hold anything.
    let line: String = message
        .replace('\n', " ")
        .chars()
        .filter(|&c| c != '\0')
        .collect();
    LAST_ERROR.with(|e| *e.borrow_mut() = CString::new(line).unwrap_or_default());
}

/// Runs `f`, turning an error or a panic into `None` and the thread's last error.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            set_error(format!("{what}: {e}"));
            None
        }
        Err(panic) => {
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            set_error(format!("{what}: internal error (panic: {text})"));
            None
        }
    }
}

fn thread_count(threads: u32) -> usize {
    if threads == 0 {
        lrpc::runtime::default_threads()
    } else {
        threads as usize
    }
}

/// Loads the artifact at `path` with every available core. Returns NULL on error (see
/// `lrpc_last_error`).
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lrpc_explainer_load(path: *const c_char) -> *mut LrpcExplainer {
    // SAFETY: forwarded contract.
    unsafe { lrpc_explainer_load_with(path, 0) }
}

/// Loads the artifact at `path` with `threads` worker threads (0: every available core).
/// Returns NULL on error.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lrpc_explainer_load_with(
    path: *const c_char,
    threads: u32,
) -> *mut LrpcExplainer {
    let explainer = guarded("lrpc_explainer_load", || {
        if path.is_null() {
            return Err("path is NULL".into());
        }
        // SAFETY: non-NULL, and NUL-terminated by the caller's contract.
        let path = unsafe { CStr::from_ptr(path) }
            .to_str()
            .map_err(|_| "path is not UTF-8".to_string())?;
        let options = LoadOptions {
            threads: thread_count(threads),
            ..LoadOptions::default()
        };
        Explainer::load_with(path, options).map_err(|e| e.to_string())
    });
    match explainer {
        Some(inner) => Box::into_raw(Box::new(LrpcExplainer { inner })),
        None => std::ptr::null_mut(),
    }
}

/// The explainer an explainer object file links in (`lrpc compile ... --emit object`), with
/// `threads` worker threads (0: every available core). Nothing is compiled or mapped
/// executable. Returns NULL on error.
///
/// # Safety
/// `object` is NULL or the entry symbol an explainer object file defines (the header written
/// beside the object declares it), linked into this program.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lrpc_explainer_from_object(
    object: *const LrpcObject,
    threads: u32,
) -> *mut LrpcExplainer {
    let explainer = guarded("lrpc_explainer_from_object", || {
        // SAFETY: NULL or a valid entry structure, by contract.
        let o = unsafe { object.as_ref() }.ok_or("object is NULL")?;
        if o.abi != 1 {
            return Err(format!(
                "the object's entry has layout version {}, this library reads version 1",
                o.abi
            ));
        }
        if o.artifact.is_null() || o.programs.is_null() {
            return Err("the object's entry has NULL tables".into());
        }
        let len = usize::try_from(o.artifact_len).map_err(|e| e.to_string())?;
        // SAFETY: the object file defines `artifact_len` bytes of read-only data at `artifact`
        // and `program_count` program records at `programs`, linked into this program (so
        // they live as long as it does).
        let (artifact, programs): (&'static [u8], &'static [LrpcObjectProgram]) = unsafe {
            (
                std::slice::from_raw_parts(o.artifact, len),
                std::slice::from_raw_parts(o.programs, o.program_count as usize),
            )
        };
        let kernels = programs
            .iter()
            .map(|p| {
                if p.kernels.is_null() && p.count > 0 {
                    return Err("the object's kernel table is NULL".to_string());
                }
                if p.count == 0 {
                    return Ok(Vec::new());
                }
                // SAFETY: `count` kernel addresses at `kernels`, defined by the object.
                let table = unsafe { std::slice::from_raw_parts(p.kernels, p.count as usize) };
                Ok(table.iter().map(|&f| f as usize).collect())
            })
            .collect::<Result<Vec<_>, _>>()?;
        // SAFETY: the tables are the object file's own, emitted from the kernel descriptions
        // of the artifact beside them (the contract of this function).
        unsafe { Explainer::from_object(artifact, kernels, thread_count(threads)) }
            .map_err(|e| e.to_string())
    });
    match explainer {
        Some(inner) => Box::into_raw(Box::new(LrpcExplainer { inner })),
        None => std::ptr::null_mut(),
    }
}

/// This thread's last error, one line (empty if there was none). Valid until the thread's
/// next call into lrpc.
#[unsafe(no_mangle)]
pub extern "C" fn lrpc_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// The explainer behind a handle, or an error naming the function.
///
/// # Safety
/// `e` is NULL or a live handle from `lrpc_explainer_load*` / `lrpc_explainer_from_object`.
unsafe fn explainer<'a>(e: *const LrpcExplainer) -> Result<&'a Explainer, String> {
    // SAFETY: by contract.
    unsafe { e.as_ref() }
        .map(|e| &e.inner)
        .ok_or_else(|| "explainer is NULL".to_string())
}

/// Floats per sample of the explained input (0 if `e` is NULL).
///
/// # Safety
/// `e` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lrpc_explainer_input_len(e: *const LrpcExplainer) -> usize {
    // SAFETY: forwarded contract.
    unsafe { explainer(e) }.map_or(0, |e| e.spec().input_len())
}

/// Logits per sample (0 if `e` is NULL).
///
/// # Safety
/// `e` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lrpc_explainer_classes(e: *const LrpcExplainer) -> usize {
    // SAFETY: forwarded contract.
    unsafe { explainer(e) }.map_or(0, |e| e.spec().classes())
}

/// The samples one run takes (the batch the explainer was compiled for; 0 if `e` is NULL).
///
/// # Safety
/// `e` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lrpc_explainer_batch(e: *const LrpcExplainer) -> usize {
    // SAFETY: forwarded contract.
    unsafe { explainer(e) }.map_or(0, |e| e.spec().batch())
}

/// Explains one sample: `input` holds `lrpc_explainer_input_len` floats; `target` < 0 explains
/// the arg-max class. Writes `input_len` floats of relevance and `classes` logits (`logits`
/// may be NULL). Returns 0, or -1 with `lrpc_last_error` set.
///
/// # Safety
/// `e` is NULL or a live handle; `input`, `relevance` and `logits` are NULL or point to the
/// lengths above.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lrpc_explain(
    e: *const LrpcExplainer,
    input: *const f32,
    target: i64,
    relevance: *mut f32,
    logits: *mut f32,
) -> c_int {
    // SAFETY: forwarded contract.
    let (per, classes) = unsafe { (lrpc_explainer_input_len(e), lrpc_explainer_classes(e)) };
    let targets = [target];
    // SAFETY: one sample of `per` floats and `classes` logits, by contract.
    unsafe {
        lrpc_explain_n(
            e,
            input,
            per,
            1,
            targets.as_ptr(),
            relevance,
            per,
            logits,
            if logits.is_null() { 0 } else { classes },
        )
    }
}

/// Explains `n` samples of `input_len` floats each (`input` holds `n * input_len`), whatever
/// batch the explainer was compiled for (they run in batches of it). `targets` holds `n`
/// classes (< 0: that sample's arg-max) or is NULL (every arg-max). Writes `n * input_len`
/// relevance values and, when `logits` is not NULL, `n * classes` logits; the lengths given
/// are checked against what the explainer takes. Returns 0, or -1 with `lrpc_last_error` set.
///
/// # Safety
/// `e` is NULL or a live handle; each pointer is NULL or points to the number of elements its
/// length argument says.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn lrpc_explain_n(
    e: *const LrpcExplainer,
    input: *const f32,
    input_len: usize,
    n: usize,
    targets: *const i64,
    relevance: *mut f32,
    relevance_len: usize,
    logits: *mut f32,
    logits_len: usize,
) -> c_int {
    let done = guarded("lrpc_explain", || {
        // SAFETY: forwarded contract.
        let ex = unsafe { explainer(e) }?;
        let (per, classes) = (ex.spec().input_len(), ex.spec().classes());
        if input.is_null() {
            return Err("input is NULL".into());
        }
        if relevance.is_null() {
            return Err("relevance is NULL".into());
        }
        if input_len != per {
            return Err(format!(
                "the explainer takes {per} floats per sample, input_len says {input_len}"
            ));
        }
        let total = n.checked_mul(per).ok_or("n * input_len overflows")?;
        if relevance_len != total {
            return Err(format!(
                "relevance_len is {relevance_len}, the relevance of {n} samples is {total} floats"
            ));
        }
        if !logits.is_null() && logits_len != n * classes {
            return Err(format!(
                "logits_len is {logits_len}, {n} samples have {} logits",
                n * classes
            ));
        }
        // SAFETY: `total` floats at `input`, by contract; read only.
        let values = unsafe { std::slice::from_raw_parts(input, total) };
        let fixed: Vec<Option<usize>> = if targets.is_null() {
            Vec::new()
        } else {
            // SAFETY: `n` targets, by contract.
            let t = unsafe { std::slice::from_raw_parts(targets, n) };
            t.iter().map(|&t| usize::try_from(t).ok()).collect()
        };
        let out = ex
            .explain_samples(values, n, &fixed)
            .map_err(|e| e.to_string())?;
        let r = out.relevance.f32s().map_err(|e| e.to_string())?;
        // SAFETY: `relevance_len` == total writable floats, by contract; `r` holds `total`.
        unsafe { std::ptr::copy_nonoverlapping(r.as_ptr(), relevance, total) };
        if !logits.is_null() {
            let l = out.logits.f32s().map_err(|e| e.to_string())?;
            // SAFETY: `logits_len` == n * classes writable floats, by contract.
            unsafe { std::ptr::copy_nonoverlapping(l.as_ptr(), logits, l.len()) };
        }
        Ok(())
    });
    if done.is_some() { 0 } else { -1 }
}

/// Frees a handle (NULL is ignored).
///
/// # Safety
/// `e` is NULL or a live handle no other thread is using; it is dead afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lrpc_explainer_free(e: *mut LrpcExplainer) {
    if !e.is_null() {
        // SAFETY: by contract, `e` came from Box::into_raw in a load function and is freed
        // once.
        drop(unsafe { Box::from_raw(e) });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_explainer_can_be_shared_between_threads() {
        fn sync<T: Send + Sync>() {}
        sync::<super::LrpcExplainer>();
    }
}
