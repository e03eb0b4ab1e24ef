//! The `lrpc` binary end to end: `inspect` dumps and error messages are pinned by insta snapshots
//! (in tests/snapshots/, never rewritten by CI); `run` output is checked against onnxruntime.

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_close, fixture, npy, root};

/// Result of one CLI invocation.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `lrpc` from the repository root with a cleared environment.
fn lrpc(args: &[&str]) -> Outcome {
    let out = Command::new(env!("CARGO_BIN_EXE_lrpc"))
        .args(args)
        .current_dir(root())
        .env_clear()
        .output()
        .expect("the lrpc binary runs");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Asserts a failing invocation: exit code 1, nothing on stdout, one line on stderr; returns it.
fn error_line(args: &[&str]) -> String {
    let o = lrpc(args);
    assert_eq!(o.code, 1, "{args:?} should fail; stdout: {}", o.stdout);
    assert!(
        o.stdout.is_empty(),
        "{args:?} printed to stdout: {}",
        o.stdout
    );
    assert_eq!(
        o.stderr.lines().count(),
        1,
        "{args:?}: not one line: {}",
        o.stderr
    );
    o.stderr
}

/// Snapshot of a command's stdout, which must succeed. Computed numbers are compared to 5
/// decimals: compiled GEMMs order their sums by the CPU's vector width, so the last digits of
/// a float32 result may differ between machines (tests/compiled.rs bounds those differences).
fn check_ok(name: &str, args: &[&str]) {
    let o = lrpc(args);
    assert_eq!(o.code, 0, "{args:?} failed: {}", o.stderr);
    insta::with_settings!({filters => vec![(r"(\d\.\d{5})\d+", "$1")]}, {
        insta::assert_snapshot!(name, o.stdout);
    });
}

#[test]
fn inspect_text_every_fixture() {
    for case in [
        "mlp", "lenet", "residual", "concat", "textcnn", "oldopset", "newopset",
    ] {
        check_ok(
            &format!("inspect_{case}"),
            &["inspect", &format!("fixtures/{case}/model.onnx")],
        );
    }
}

#[test]
fn inspect_json_and_dot() {
    check_ok(
        "inspect_json_residual",
        &[
            "inspect",
            "fixtures/residual/model.onnx",
            "--format",
            "json",
        ],
    );
    check_ok(
        "inspect_dot_concat",
        &["inspect", "fixtures/concat/model.onnx", "--format", "dot"],
    );
}

#[test]
fn inspect_binds_batch() {
    let o = lrpc(&["inspect", "fixtures/mlp/model.onnx", "--batch", "4"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("input input f32[4,20]"), "{}", o.stdout);
}

#[test]
fn bad_models_give_one_line_errors() {
    let mut bad: Vec<String> = std::fs::read_dir(root().join("fixtures/bad"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".onnx"))
        .collect();
    bad.sort();
    assert!(
        bad.len() >= 11,
        "expected the bad-model fixtures, found {bad:?}"
    );
    // Models that are well formed but cannot be explained as given: explained, not inspected.
    let explain_only = ["int_input.onnx", "two_inputs.onnx"];
    let dir = tempfile::tempdir().unwrap();
    let float4 = dir.path().join("f.npy");
    lrpc::io::npy::write(
        &float4,
        &lrpc::ir::Tensor::from_f32(vec![1, 4], vec![0.5; 4]).unwrap(),
    )
    .unwrap();
    for file in bad {
        let path = format!("fixtures/bad/{file}");
        let line = if explain_only.contains(&file.as_str()) {
            error_line(&["explain", &path, "--input", float4.to_str().unwrap()])
        } else {
            error_line(&["inspect", &path])
        };
        insta::assert_snapshot!(format!("error_{}", file.trim_end_matches(".onnx")), line);
    }
}

#[test]
fn missing_model_file() {
    insta::assert_snapshot!(
        "error_missing_file",
        error_line(&["inspect", "fixtures/nope.onnx"])
    );
}

#[test]
fn run_matches_onnxruntime_and_writes_npy() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("y.npy");
    let o = lrpc(&[
        "run",
        "fixtures/lenet/model.onnx",
        "--input",
        "fixtures/lenet/input.npy",
        "--output",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let json: serde_json::Value =
        serde_json::from_str(&o.stdout).expect("--json prints one JSON object");
    let reference = npy(&fixture("lenet", "output.npy"));
    let values: Vec<f32> = json["outputs"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let printed = lrpc::ir::Tensor::from_f32(reference.shape().to_vec(), values).unwrap();
    assert_close(&printed, &reference, 1e-5, "--json values");
    assert_close(&npy(&out), &reference, 1e-5, "--output file");
}

fn write_npy(dir: &Path, name: &str, shape: Vec<usize>, data: Vec<f32>) -> String {
    let path = dir.join(name);
    lrpc::io::npy::write(&path, &lrpc::ir::Tensor::from_f32(shape, data).unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn run_rejects_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().to_str().unwrap().to_string();
    let mut nan = vec![0.5f32; 20];
    nan[7] = f32::NAN;
    let nan = write_npy(dir.path(), "nan.npy", vec![1, 20], nan);
    let wrong = write_npy(dir.path(), "wrong.npy", vec![1, 21], vec![0.0; 21]);
    let text = dir.path().join("text.npy");
    std::fs::write(&text, "not an array").unwrap();
    let cases = [
        (
            "error_input_nan",
            vec!["run", "fixtures/mlp/model.onnx", "--input", &nan],
        ),
        (
            "error_input_shape",
            vec!["run", "fixtures/mlp/model.onnx", "--input", &wrong],
        ),
        (
            "error_input_not_npy",
            vec![
                "run",
                "fixtures/mlp/model.onnx",
                "--input",
                text.to_str().unwrap(),
            ],
        ),
        (
            "error_bad_dim_flag",
            vec!["inspect", "fixtures/mlp/model.onnx", "--dim", "seq"],
        ),
        (
            "error_max_elements",
            vec![
                "inspect",
                "fixtures/lenet/model.onnx",
                "--max-elements",
                "1000",
            ],
        ),
    ];
    for (name, args) in cases {
        let line = error_line(&args);
        insta::with_settings!({filters => vec![(tmp.as_str(), "[TMP]")]}, {
            insta::assert_snapshot!(name, line);
        });
    }
}

#[test]
fn inspect_shows_the_rule_of_every_node() {
    check_ok(
        "inspect_method_lenet",
        &[
            "inspect",
            "fixtures/lenet/model.onnx",
            "--method",
            "epsilon-plus-flat",
        ],
    );
    check_ok(
        "inspect_method_concat",
        &[
            "inspect",
            "fixtures/concat/model.onnx",
            "--method",
            "epsilon-gamma-box",
            "--rule",
            "/b3/*=flat",
        ],
    );
    check_ok(
        "inspect_method_residual",
        &[
            "inspect",
            "fixtures/residual/model.onnx",
            "--method",
            "excitation-backprop",
        ],
    );
}

#[test]
fn explain_json_reports_target_logit_and_layers() {
    check_ok(
        "explain_json_lenet",
        &[
            "explain",
            "fixtures/lenet/model.onnx",
            "--input",
            "fixtures/lenet/input.npy",
            "--method",
            "epsilon",
            "--json",
        ],
    );
    check_ok(
        "explain_json_layers_residual",
        &[
            "explain",
            "fixtures/residual/model.onnx",
            "--input",
            "fixtures/residual/input.npy",
            "--method",
            "epsilon-gamma-box",
            "--json",
            "--layers",
        ],
    );
}

#[test]
fn explain_writes_relevance_and_heatmap() {
    let dir = tempfile::tempdir().unwrap();
    let (r, h) = (dir.path().join("r.npy"), dir.path().join("h.png"));
    let o = lrpc(&[
        "explain",
        "fixtures/lenet/model.onnx",
        "--input",
        "fixtures/lenet/input.npy",
        "--method",
        "epsilon-plus-flat",
        "--output",
        r.to_str().unwrap(),
        "--heatmap",
        h.to_str().unwrap(),
        "--cmap",
        "coldnhot",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.starts_with("method epsilon-plus-flat: target 7"),
        "{}",
        o.stdout
    );
    assert_close(
        &npy(&r),
        &npy(&fixture("lenet", "ref_epsilon-plus-flat.npy")),
        1e-3,
        "--output",
    );
    let png = image_dimensions(&h);
    assert_eq!(png, (224, 224), "28x28 drawn in 8x8 blocks");
}

/// Width and height from a PNG header.
fn image_dimensions(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    (be(16), be(20))
}

#[test]
fn explain_errors() {
    let lenet = [
        "explain",
        "fixtures/lenet/model.onnx",
        "--input",
        "fixtures/lenet/input.npy",
    ];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        lenet.iter().chain(extra).copied().collect()
    };
    let cases = [
        ("error_explain_unknown_method", with(&["--method", "magic"])),
        ("error_explain_target_range", with(&["--target", "10"])),
        ("error_explain_target_word", with(&["--target", "best"])),
        (
            "error_explain_rule_misfit",
            with(&["--rule", "/features/features.3/*=gamma"]),
        ),
        (
            "error_explain_overlay_npy",
            with(&["--overlay", "--heatmap", "x.png"]),
        ),
        ("error_explain_cmap", with(&["--cmap", "viridis"])),
        (
            "error_explain_gamma_box_mlp",
            vec![
                "explain",
                "fixtures/mlp/model.onnx",
                "--input",
                "fixtures/mlp/input.npy",
                "--method",
                "epsilon-gamma-box",
            ],
        ),
    ];
    for (name, args) in cases {
        insta::assert_snapshot!(name, error_line(&args));
    }
}

#[test]
fn image_input_equals_its_npy() {
    // fixtures/shapes/input.npy was made from input.png with mean 0.5, std 0.25.
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("r.npy");
    let h = dir.path().join("h.png");
    let o = lrpc(&[
        "explain",
        "fixtures/shapes/model.onnx",
        "--input",
        "fixtures/shapes/input.png",
        "--mean",
        "0.5",
        "--std",
        "0.25",
        "--method",
        "epsilon-gamma-box",
        "--low",
        "-2",
        "--high",
        "2",
        "--output",
        r.to_str().unwrap(),
        "--heatmap",
        h.to_str().unwrap(),
        "--overlay",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.starts_with("method epsilon-gamma-box: target 2"),
        "{}",
        o.stdout
    );
    assert_close(
        &npy(&r),
        &npy(&fixture("shapes", "ref_epsilon-gamma-box.npy")),
        1e-3,
        "from the PNG",
    );
    assert_eq!(image_dimensions(&h), (224, 224));
}

#[test]
fn bench_json_has_the_documented_keys() {
    let o = lrpc(&[
        "bench",
        "fixtures/mlp/model.onnx",
        "--method",
        "epsilon",
        "--runs",
        "2",
        "--batch",
        "3",
        "--threads",
        "2",
        "--json",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let j: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    for key in ["compile_s", "forward_s", "explain_s", "peak_rss_mb"] {
        assert!(j[key].as_f64().is_some_and(|v| v > 0.0), "{key} in {j}");
    }
    assert_eq!(
        (
            j["batch"].as_u64(),
            j["threads"].as_u64(),
            j["method"].as_str()
        ),
        (Some(3), Some(2), Some("epsilon"))
    );
    assert_eq!(j["engine"].as_str(), Some("compiled"));
    let e = error_line(&[
        "bench",
        "fixtures/mlp/model.onnx",
        "--interpreter",
        "--threads",
        "2",
    ]);
    assert!(e.contains("one thread"), "{e}");
    let e = error_line(&["bench", "fixtures/mlp/model.onnx", "--threads", "0"]);
    assert!(e.contains("positive"), "{e}");
}

/// Runs `lrpc`, requiring success; returns stdout.
fn ok(args: &[&str]) -> String {
    let o = lrpc(args);
    assert_eq!(o.code, 0, "{args:?} failed: {}", o.stderr);
    o.stdout
}

/// The one-line error of a failing command, with the temporary directory replaced by `[TMP]`.
fn error_in(dir: &Path, args: &[&str]) -> String {
    error_line(args).replace(&dir.display().to_string(), "[TMP]")
}

#[test]
fn artifacts_answer_like_their_model_and_refuse_what_they_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let artifact = d.join("lenet.lrpx");
    let a = artifact.to_str().unwrap();
    let printed = ok(&[
        "compile",
        "fixtures/lenet/model.onnx",
        "--method",
        "epsilon-gamma-box",
        "--low",
        "-2",
        "--threads",
        "2",
        "-o",
        a,
    ]);
    assert!(printed.contains("epsilon-gamma-box"), "{printed}");
    let input = "fixtures/lenet/input.npy";
    // The same JSON, byte for byte, from the artifact and from the model.
    let from_artifact = ok(&["explain", a, "--input", input, "--json", "--threads", "2"]);
    let from_model = ok(&[
        "explain",
        "fixtures/lenet/model.onnx",
        "--input",
        input,
        "--method",
        "epsilon-gamma-box",
        "--low",
        "-2",
        "--json",
        "--threads",
        "2",
    ]);
    assert_eq!(from_artifact, from_model);
    assert_eq!(
        ok(&["run", a, "--input", input, "--json"]),
        ok(&[
            "run",
            "fixtures/lenet/model.onnx",
            "--input",
            input,
            "--json"
        ])
    );
    // --output writes the same relevance.
    let (ra, rm) = (d.join("ra.npy"), d.join("rm.npy"));
    ok(&[
        "explain",
        a,
        "--input",
        input,
        "--threads",
        "2",
        "--output",
        ra.to_str().unwrap(),
    ]);
    ok(&[
        "explain",
        "fixtures/lenet/model.onnx",
        "--input",
        input,
        "--method",
        "epsilon-gamma-box",
        "--low",
        "-2",
        "--threads",
        "2",
        "--output",
        rm.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&ra).unwrap(), std::fs::read(&rm).unwrap());

    let shown = ok(&["inspect", a]);
    for part in [
        "method: epsilon-gamma-box (epsilon 1e-6, gamma 0.25, low -2, high 3",
        "input: input [1, 1, 28, 28]; logits [1, 10] (10 classes)",
        "/features/features.0/Conv                Conv                 zbox(-2,3)",
        "program0.constants",
        "source: fixtures/lenet/model.onnx",
    ] {
        assert!(shown.contains(part), "inspect lacks '{part}':\n{shown}");
    }
    let json: serde_json::Value = serde_json::from_str(&ok(&["inspect", a, "--format", "json"]))
        .expect("inspect --format json prints JSON");
    assert_eq!(json["method"], "epsilon-gamma-box");
    assert_eq!(json["classes"], 10);

    let bench: serde_json::Value =
        serde_json::from_str(&ok(&["bench", a, "--runs", "2", "--json"])).unwrap();
    assert!(bench["load_s"].as_f64().unwrap() > 0.0, "{bench}");

    for (name, args) in [
        (
            "method",
            &["explain", a, "--input", input, "--method", "epsilon"][..],
        ),
        (
            "epsilon",
            &["explain", a, "--input", input, "--epsilon", "0.1"],
        ),
        ("gamma", &["explain", a, "--input", input, "--gamma", "0.5"]),
        ("low", &["explain", a, "--input", input, "--low", "-1"]),
        (
            "rule",
            &["explain", a, "--input", input, "--rule", "*=flat"],
        ),
        ("batch", &["explain", a, "--input", input, "--batch", "2"]),
        (
            "interpreter",
            &["explain", a, "--input", input, "--interpreter"],
        ),
        ("layers", &["explain", a, "--input", input, "--layers"]),
        ("run_dim", &["run", a, "--input", input, "--dim", "n=3"]),
        ("bench_method", &["bench", a, "--method", "gradient"]),
        ("inspect_method", &["inspect", a, "--method", "epsilon"]),
        (
            "input_shape",
            &["explain", a, "--input", "fixtures/mlp/input.npy"],
        ),
    ] {
        insta::assert_snapshot!(format!("error_artifact_{name}"), error_in(d, args));
    }
    // A damaged file is one line too.
    let mut bytes = std::fs::read(&artifact).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    let bad = d.join("bad.lrpx");
    std::fs::write(&bad, &bytes).unwrap();
    let line = error_in(d, &["explain", bad.to_str().unwrap(), "--input", input]);
    assert!(
        line.contains("[TMP]/bad.lrpx: not a valid lrpc artifact"),
        "{line}"
    );

    // An object file and its header.
    let object = d.join("lenet_explainer.o");
    ok(&[
        "compile",
        "fixtures/lenet/model.onnx",
        "--method",
        "epsilon",
        "--emit",
        "object",
        "-o",
        object.to_str().unwrap(),
    ]);
    let header = std::fs::read_to_string(d.join("lenet_explainer.h")).unwrap();
    assert!(header.contains("extern const LrpcObject lrpc_explainer_lenet_explainer;"));
    assert!(std::fs::metadata(&object).unwrap().len() > 1000);
}

#[test]
fn a_closed_pipe_ends_the_process_quietly() {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_lrpc"))
        .args([
            "inspect",
            "fixtures/residual/model.onnx",
            "--format",
            "json",
        ])
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    child.wait().unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
}
