//! The committed C header (capi/lrpc.h) is exactly what cbindgen makes of capi/src/lib.rs: the
//! check for drift. To regenerate after changing the ABI:
//! `LRPC_WRITE_HEADER=1 cargo test -p lrpc-capi --test header`.

use std::path::PathBuf;

#[test]
fn the_committed_header_matches_the_source() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen parses capi/src/lib.rs")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");
    let path = dir.join("lrpc.h");
    if std::env::var_os("LRPC_WRITE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("writing capi/lrpc.h");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "capi/lrpc.h is out of date with capi/src/lib.rs; regenerate it with \
         LRPC_WRITE_HEADER=1 cargo test -p lrpc-capi --test header"
    );
}
