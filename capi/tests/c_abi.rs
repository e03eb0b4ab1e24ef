//! The C ABI end to end: a C program (tests/c/explain.c) compiled with `cc` and linked with the
//! static library, once loading an artifact through `lrpc_explainer_load`, once linking an
//! explainer object file (nothing compiled at run time); its relevance and logits equal the Rust
//! library's bitwise at the same thread count, including from several threads at once.

use std::path::{Path, PathBuf};
use std::process::Command;

use lrpc::ir::Tensor;
use lrpc::onnx::ImportOptions;
use lrpc::relevance::Method;
use lrpc::{ExplainOptions, Explainer, Model, Target};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The directory holding this build's liblrpc_capi.a (the test binary lives in its `deps/`).
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

fn cc(out: &Path, extra: &[&str], include: &Path) {
    let lib = library_dir();
    assert!(
        lib.join("liblrpc_capi.a").exists(),
        "no static library in {}: `cargo test` builds lrpc-capi only as an rlib; run `cargo build` \
         first (README's test command does)",
        lib.display()
    );
    let src = root().join("capi/tests/c/explain.c");
    let status = Command::new("cc")
        .args(["-O1", "-Wall", "-Werror", "-o"])
        .arg(out)
        .arg(&src)
        .args(extra)
        .arg(format!("-I{}", root().join("capi").display()))
        .arg(format!("-I{}", include.display()))
        .arg(lib.join("liblrpc_capi.a"))
        .args(["-lpthread", "-ldl", "-lm", "-lrt", "-lgcc_s", "-lutil"])
        .status()
        .expect("cc runs");
    assert!(status.success(), "cc failed for {}", out.display());
}

fn floats(path: &Path) -> Vec<u32> {
    std::fs::read(path)
        .expect("the C program wrote its output")
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Samples: the fixture's input and shifted, scaled copies of it.
fn samples(x: &Tensor, n: usize) -> Vec<f32> {
    let v = x.f32s().unwrap();
    (0..n)
        .flat_map(|k| {
            v.iter()
                .map(move |&a| a * (1.0 + 0.1 * k as f32) - 0.05 * k as f32)
        })
        .collect()
}

#[test]
fn c_programs_explain_bitwise_like_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // One program loads any artifact; an object file is linked into a program of its own.
    let via_artifact = d.join("artifact_prog");
    cc(&via_artifact, &[], d);
    let mut checked = 0;
    for (case, method) in [
        ("lenet", "epsilon-gamma-box"),
        ("residual", "epsilon-plus-flat"),
        ("textcnn", "gradient"),
        ("shapes", "epsilon-alpha2-beta1"),
        ("concat", "smoothgrad"),
    ] {
        let model = Model::load(
            root().join("fixtures").join(case).join("model.onnx"),
            &ImportOptions::default(),
        )
        .unwrap();
        let x = lrpc::io::npy::read(&root().join("fixtures").join(case).join("input.npy")).unwrap();
        let options = ExplainOptions {
            threads: 2,
            ..ExplainOptions::default()
        };
        let e = Explainer::with_options(&model, Method::parse(method).unwrap(), options).unwrap();
        let n = 5;
        let inputs = samples(&x, n);
        let input_file = d.join(format!("{case}.f32"));
        std::fs::write(&input_file, bytemuck_bytes(&inputs)).unwrap();
        // The library's answer, one sample at a time as the C program asks.
        let per = x.len();
        let (mut want_r, mut want_l) = (Vec::new(), Vec::new());
        for s in 0..n {
            let xs = Tensor::from_f32(x.shape().to_vec(), inputs[s * per..][..per].to_vec());
            let out = e.explain(xs.unwrap(), Target::Top).unwrap();
            want_r.extend(out.relevance.f32s().unwrap().iter().map(|v| v.to_bits()));
            want_l.extend(out.logits.f32s().unwrap().iter().map(|v| v.to_bits()));
        }
        let artifact = d.join(format!("{case}.lrpx"));
        e.save(&artifact).unwrap();
        let object_dir = d.join(format!("{case}_object"));
        std::fs::create_dir(&object_dir).unwrap();
        e.save_object(object_dir.join("explainer.o")).unwrap();
        assert!(object_dir.join("explainer.h").exists());

        let via_object = d.join(format!("{case}_object_prog"));
        let object = object_dir.join("explainer.o");
        cc(
            &via_object,
            &["-DLRPC_OBJECT", object.to_str().unwrap()],
            &object_dir,
        );
        for (prog, arg) in [
            (&via_artifact, artifact.to_str().unwrap()),
            (&via_object, "-"),
        ] {
            let (r, l) = (d.join("r.f32"), d.join("l.f32"));
            let out = Command::new(prog)
                .arg(arg)
                .arg(&input_file)
                .arg(n.to_string())
                .arg(&r)
                .arg(&l)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{case} {method} {}: {}",
                prog.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                floats(&r),
                want_r,
                "{case} {method} {}: relevance",
                prog.display()
            );
            assert_eq!(
                floats(&l),
                want_l,
                "{case} {method} {}: logits",
                prog.display()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 10);
}

fn bytemuck_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
