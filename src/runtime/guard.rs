//! Guarded allocations for the bounds check: each region sits against an inaccessible page, so
//! a kernel that reads or writes one element past its end (or before its start) faults instead
//! of silently touching a neighbour.

/// Which edge of the region touches the guard page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardSide {
    /// The region ends where the guard page begins (catches overruns).
    After,
    /// The region starts where the guard page ends (catches underruns).
    Before,
}

/// An mmap'd region: guard page, data pages, guard page; the data placed against one guard.
pub struct Region {
    base: *mut libc::c_void,
    total: usize,
    data: *mut u8,
}

fn page() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).unwrap_or(4096).max(4096)
}

impl Region {
    /// A region of `len` bytes (a multiple of 4) against the guard on `side`.
    pub fn new(len: usize, side: GuardSide) -> std::io::Result<Region> {
        let page = page();
        let data_pages = len.div_ceil(page).max(1);
        let total = (data_pages + 2) * page;
        // SAFETY: an anonymous private mapping with no address hint; the result is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let bytes = base.cast::<u8>();
        // SAFETY: both guard pages lie inside the mapping just created.
        let protected = unsafe {
            libc::mprotect(base, page, libc::PROT_NONE) == 0
                && libc::mprotect(
                    bytes.add(page + data_pages * page).cast(),
                    page,
                    libc::PROT_NONE,
                ) == 0
        };
        let region = Region {
            base,
            total,
            // SAFETY: the offset stays inside the data pages (len <= data_pages * page).
            data: unsafe {
                match side {
                    GuardSide::Before => bytes.add(page),
                    GuardSide::After => bytes.add(page + data_pages * page - len),
                }
            },
        };
        if !protected {
            return Err(std::io::Error::last_os_error());
        }
        Ok(region)
    }

    /// The first data byte.
    pub fn data(&self) -> *mut u8 {
        self.data
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: `base`/`total` are exactly the mapping created in `new`, unmapped once.
        unsafe {
            libc::munmap(self.base, self.total);
        }
    }
}
