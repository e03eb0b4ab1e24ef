//! Fuzzes the artifact loader: arbitrary bytes as an .lrpx must load or fail with an error, never
//! panic, crash or allocate without bound. The bytes are tried as they are (the checksums stop
//! nearly every mutation) and, when their header decodes, again with every checksum recomputed,
//! so mutations of the header and payload reach the decoder and the program checks. The second
//! load recompiles the kernels from their descriptions: stored machine code is code (an artifact
//! is trusted like a shared library), so it is checked by checksum only.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lrpc_fuzz::artifact(data);
});
