//! Kernel code and what keeps it mapped: freshly JIT-compiled by Cranelift, machine code stored
//! in an artifact and mapped back (no compiler runs at load), or functions linked into the
//! binary from an explainer object file. Executables only see entry addresses.

use super::jit::Jit;
use super::program::KernelDesc;
use crate::ir::ops::{Activation, ActivationGrad, BinaryOp};

/// `expf` for kernels: registered with the JIT, patched into stored code, and resolved by the
/// linker for object files (hence the unmangled name).
#[unsafe(no_mangle)]
pub extern "C" fn lrpc_expf(x: f32) -> f32 {
    x.exp()
}

/// `tanhf` for kernels (see [`lrpc_expf`]).
#[unsafe(no_mangle)]
pub extern "C" fn lrpc_tanhf(x: f32) -> f32 {
    x.tanh()
}

/// Every other pointwise function for kernels: `code` is [`Activation::code`] (plus
/// [`GRADIENT`] for f'(x)), `p0`/`p1` its parameters. One entry point instead of one symbol per
/// function keeps the stored-code patch table and the linker's symbol list fixed; these are the
/// scalar, transcendental cases where a call is paid anyway. The same Rust functions as the
/// interpreter's, so compiled results equal it.
#[unsafe(no_mangle)]
pub extern "C" fn lrpc_unaryf(code: u32, p0: f32, p1: f32, x: f32) -> f32 {
    match Activation::from_code(code & !GRADIENT, p0, p1) {
        Some(a) if code & GRADIENT != 0 => ActivationGrad { activation: a }.derivative(x),
        Some(a) => a.apply(x),
        None => f32::NAN,
    }
}

/// Added to an activation's code to ask [`lrpc_unaryf`] for its derivative.
pub const GRADIENT: u32 = 0x100;

/// Binary functions without an inline form (Pow, Mod, FMod): `code` is [`BinaryOp::code`].
#[unsafe(no_mangle)]
pub extern "C" fn lrpc_binaryf(code: u32, a: f32, b: f32) -> f32 {
    match BinaryOp::ALL.get(code as usize) {
        Some(op) => op.f32(a, b),
        None => f32::NAN,
    }
}

/// A function kernels call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Symbol {
    Exp,
    Tanh,
    Unary,
    Binary,
}

impl Symbol {
    pub const ALL: [Symbol; 4] = [Symbol::Exp, Symbol::Tanh, Symbol::Unary, Symbol::Binary];

    pub fn address(self) -> usize {
        match self {
            Symbol::Exp => lrpc_expf as *const () as usize,
            Symbol::Tanh => lrpc_tanhf as *const () as usize,
            Symbol::Unary => lrpc_unaryf as *const () as usize,
            Symbol::Binary => lrpc_binaryf as *const () as usize,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Symbol::Exp => "lrpc_expf",
            Symbol::Tanh => "lrpc_tanhf",
            Symbol::Unary => "lrpc_unaryf",
            Symbol::Binary => "lrpc_binaryf",
        }
    }

    /// The symbol with this name.
    pub fn from_name(name: &str) -> Option<Symbol> {
        Symbol::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Its parameters: the integer code arguments first, then floats; all return one f32.
    pub fn params(self) -> (usize, usize) {
        match self {
            Symbol::Exp | Symbol::Tanh => (0, 1),
            Symbol::Unary => (1, 3),
            Symbol::Binary => (1, 2),
        }
    }
}

/// Where the absolute address of a symbol (plus `addend`) goes in a function's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Patch {
    pub offset: u32,
    pub symbol: Symbol,
    pub addend: i64,
}

/// One function's machine code as Cranelift produced it, before relocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineCode {
    pub bytes: Vec<u8>,
    pub patches: Vec<Patch>,
}

enum Owner {
    Jit(#[allow(dead_code)] Box<Jit>),
    Mapped(#[allow(dead_code)] Mapped),
    /// Linked into the binary: lives as long as the process.
    Linked,
}

/// Entry addresses of a program's kernels, in kernel order, and their storage.
pub struct Code {
    addresses: Vec<usize>,
    /// The relocatable machine code, when known (what an artifact stores).
    machine: Option<Vec<MachineCode>>,
    _owner: Owner,
}

// SAFETY: the code is immutable once made (JIT finalized, mapping read+execute, linked text) and
// kernels keep no state, so entry addresses can be called from any thread.
unsafe impl Send for Code {}
// SAFETY: as above; `&Code` only hands out addresses.
unsafe impl Sync for Code {}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match self._owner {
            Owner::Jit(_) => "jit",
            Owner::Mapped(_) => "mapped",
            Owner::Linked => "linked",
        };
        write!(f, "Code({} kernels, {how})", self.addresses.len())
    }
}

impl Code {
    /// Compiles `kernels` for this CPU, keeping each kernel's relocatable machine code too
    /// (a copy of a few KB, so the executable can be saved as an artifact).
    pub fn jit(kernels: &[KernelDesc]) -> Result<Code, String> {
        let mut jit = Jit::new()?;
        jit.emitter().capture();
        let ids = kernels
            .iter()
            .map(|k| jit.emitter().kernel(k))
            .collect::<Result<Vec<_>, _>>()?;
        let machine = jit.emitter().take_code();
        jit.finalize()?;
        let addresses = ids.iter().map(|&id| jit.address(id) as usize).collect();
        Ok(Code {
            addresses,
            machine: Some(machine),
            _owner: Owner::Jit(Box::new(jit)),
        })
    }

    /// Maps stored machine code into executable memory and resolves its calls; nothing is
    /// compiled. The code must come from [`Code::jit`] with `capture` on this kind of CPU
    /// (the artifact loader checks the target and its features before calling this).
    pub fn map(functions: &[(&[u8], &[Patch])]) -> Result<Code, String> {
        let mapped = Mapped::new(functions)?;
        let machine = functions
            .iter()
            .map(|(bytes, patches)| MachineCode {
                bytes: bytes.to_vec(),
                patches: patches.to_vec(),
            })
            .collect();
        Ok(Code {
            addresses: mapped.entries.clone(),
            machine: Some(machine),
            _owner: Owner::Mapped(mapped),
        })
    }

    /// Functions linked into this binary.
    ///
    /// # Safety
    /// Every address must be a function of the signature its kernel's kind calls (see
    /// `emit::Signature`), emitted from the description at the same index of the program it
    /// runs with, and stay valid for the process's life.
    pub unsafe fn linked(addresses: Vec<usize>) -> Code {
        Code {
            addresses,
            machine: None,
            _owner: Owner::Linked,
        }
    }

    /// Each kernel's relocatable machine code, when this code was compiled or mapped here.
    pub fn machine_code(&self) -> Option<&[MachineCode]> {
        self.machine.as_deref()
    }

    /// How many kernels there are.
    pub fn len(&self) -> usize {
        self.addresses.len()
    }

    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }

    /// The entry address of kernel `k`.
    pub fn address(&self, k: usize) -> Option<usize> {
        self.addresses.get(k).copied()
    }
}

/// Stored functions copied into one anonymous mapping, patched, then made read + execute.
struct Mapped {
    base: *mut libc::c_void,
    len: usize,
    entries: Vec<usize>,
}

/// Functions start on this boundary in the mapping.
const FUNCTION_ALIGN: usize = 16;

impl Mapped {
    fn new(functions: &[(&[u8], &[Patch])]) -> Result<Mapped, String> {
        if !cfg!(all(target_arch = "x86_64", target_os = "linux")) {
            return Err("stored machine code is mapped on x86-64 Linux only".into());
        }
        let mut offsets = Vec::with_capacity(functions.len());
        let mut total = 0usize;
        for (bytes, patches) in functions {
            for p in *patches {
                let end = (p.offset as usize).checked_add(8);
                if end.is_none_or(|e| e > bytes.len()) {
                    return Err(format!(
                        "a relocation at offset {} lies outside its function of {} bytes",
                        p.offset,
                        bytes.len()
                    ));
                }
            }
            offsets.push(total);
            total = total
                .checked_add(bytes.len().next_multiple_of(FUNCTION_ALIGN))
                .ok_or("the stored code is too large")?;
        }
        let len = total.max(1).next_multiple_of(4096);
        // SAFETY: an anonymous private mapping with no address hint; the result is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!(
                "mapping {len} bytes for code failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        let mapped = Mapped {
            base,
            len,
            entries: offsets.iter().map(|&o| base as usize + o).collect(),
        };
        for ((bytes, patches), &at) in functions.iter().zip(&offsets) {
            // SAFETY: `at + bytes.len()` <= total <= len: the copy stays inside the mapping,
            // which is writable until the mprotect below.
            let dst = unsafe {
                let dst = mapped.base.cast::<u8>().add(at);
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len());
                dst
            };
            for p in *patches {
                let value = (p.symbol.address() as i64).wrapping_add(p.addend) as u64;
                // SAFETY: offset + 8 <= bytes.len() was checked above, so the 8 bytes lie in
                // this function's copy; unaligned writes are fine on x86-64.
                unsafe {
                    std::ptr::write_unaligned(
                        dst.add(p.offset as usize).cast::<u64>(),
                        value.to_le(),
                    )
                };
            }
        }
        // SAFETY: `base`/`len` are exactly the mapping created above.
        let protected =
            unsafe { libc::mprotect(mapped.base, mapped.len, libc::PROT_READ | libc::PROT_EXEC) };
        if protected != 0 {
            return Err(format!(
                "making the code executable failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(mapped)
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly the mapping created in `new`, unmapped once; no
        // executable using the code outlives the `Code` that owns this.
        unsafe {
            libc::munmap(self.base, self.len);
        }
    }
}
