//! The global allocator of lrpc's binaries: the system allocator, with transparent huge pages
//! asked for on every large allocation. Explaining a VGG16 touches gigabytes of fresh memory
//! (weights, modified weights, arenas); on a machine whose THP mode is `madvise`, every 4 KB of
//! it is a page fault, which measured as most of `lrpc compile`'s time in the kernel. With the
//! advice a fault maps 2 MB.

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations from this size on get the advice.
const LARGE: usize = 4 << 20;
/// The huge page size the advice is aligned to.
const HUGE: usize = 2 << 20;

/// `System`, plus `madvise(MADV_HUGEPAGE)` on large blocks.
pub struct HugePages;

fn advise(ptr: *mut u8, size: usize) {
    if ptr.is_null() || size < LARGE {
        return;
    }
    let start = (ptr as usize).next_multiple_of(HUGE);
    let end = (ptr as usize + size) / HUGE * HUGE;
    if end > start {
        // SAFETY: [start, end) lies inside the block just allocated; the advice changes how the
        // kernel backs those pages, never their contents or who may use them.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

// SAFETY: every method forwards to `System` with the same arguments, so the allocator's
// contract holds as `System`'s does; `advise` only adds a hint about memory it was given.
unsafe impl GlobalAlloc for HugePages {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc(layout) };
        advise(p, layout.size());
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        advise(p, layout.size());
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        advise(p, new_size);
        p
    }
}
