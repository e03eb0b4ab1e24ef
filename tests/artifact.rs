//! Ahead-of-time explainers: an explanation from an artifact equals the one from the ONNX file
//! bitwise (same threads), for every fixture and method, with stored or recompiled kernels; a
//! damaged artifact is refused with a one-line error.

mod common;

use common::{fixture, npy};
use lrpc::onnx::ImportOptions;
use lrpc::relevance::{METHOD_NAMES, Method};
use lrpc::runtime::artifact::CodeSource;
use lrpc::{ExplainOptions, Explainer, LoadOptions, Model, Target};

const CASES: &[&str] = &[
    "mlp", "lenet", "residual", "concat", "textcnn", "oldopset", "newopset", "shapes",
];

fn options(threads: usize) -> ExplainOptions {
    ExplainOptions {
        threads,
        ..ExplainOptions::default()
    }
}

fn bits(t: &lrpc::ir::Tensor) -> Vec<u32> {
    t.f32s().unwrap().iter().map(|v| v.to_bits()).collect()
}

#[test]
fn artifacts_explain_bitwise_like_the_onnx_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for case in CASES {
        let model = Model::load(fixture(case, "model.onnx"), &ImportOptions::default()).unwrap();
        let x = npy(&fixture(case, "input.npy"));
        for &m in METHOD_NAMES {
            let Ok(e) = Explainer::with_options(&model, Method::parse(m).unwrap(), options(2))
            else {
                continue;
            };
            let path = dir.path().join(format!("{case}-{m}.lrpx"));
            e.save(&path)
                .unwrap_or_else(|err| panic!("{case} {m}: {err}"));
            let want = e.explain(x.clone(), Target::Top).unwrap();
            for code in [CodeSource::Stored, CodeSource::Recompile] {
                let which = format!("{code:?}");
                let loaded = Explainer::load_with(
                    &path,
                    LoadOptions {
                        threads: 2,
                        code,
                        ..LoadOptions::default()
                    },
                )
                .unwrap_or_else(|err| panic!("{case} {m} {which}: {err}"));
                let got = loaded.explain(x.clone(), Target::Top).unwrap();
                assert_eq!(got.targets, want.targets, "{case} {m}");
                assert_eq!(bits(&got.logits), bits(&want.logits), "{case} {m} logits");
                assert_eq!(
                    bits(&got.relevance),
                    bits(&want.relevance),
                    "{case} {m} {which} relevance"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 150, "only {checked} combinations checked");
}

fn saved(case: &str, method: &str, threads: usize, dir: &std::path::Path) -> std::path::PathBuf {
    let model = Model::load(fixture(case, "model.onnx"), &ImportOptions::default()).unwrap();
    let e =
        Explainer::with_options(&model, Method::parse(method).unwrap(), options(threads)).unwrap();
    let path = dir.join(format!("{case}-{method}-{threads}.lrpx"));
    e.save(&path).unwrap();
    path
}

fn load_error(path: &std::path::Path) -> String {
    let e = Explainer::load(path).expect_err("the damaged artifact must be refused");
    let text = e.to_string();
    assert_eq!(text.lines().count(), 1, "not one line: {text}");
    assert!(
        text.contains(&path.display().to_string()),
        "names no file: {text}"
    );
    text
}

#[test]
fn a_flipped_byte_anywhere_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved("residual", "epsilon-gamma-box", 2, dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let bad = dir.path().join("bad.lrpx");
    // Every byte of the prefix, then a spread of positions over the header, the padding and
    // every section of the payload.
    let step = (bytes.len() / 997).max(1);
    let positions: Vec<usize> = (0..32).chain((32..bytes.len()).step_by(step)).collect();
    for &at in &positions {
        let mut b = bytes.clone();
        b[at] ^= 0x10;
        std::fs::write(&bad, &b).unwrap();
        let text = load_error(&bad);
        assert!(
            text.contains("not a valid lrpc artifact"),
            "byte {at}: unexpected error {text}"
        );
    }
    // Truncated anywhere, or extended.
    for len in [0, 7, 31, 100, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&bad, &bytes[..len]).unwrap();
        load_error(&bad);
    }
    let mut longer = bytes.clone();
    longer.push(0);
    std::fs::write(&bad, &longer).unwrap();
    assert!(load_error(&bad).contains("truncated or extended"));
}

#[test]
fn another_format_version_or_cpu_is_refused_by_name() {
    use lrpc::runtime::artifact::testing;
    let dir = tempfile::tempdir().unwrap();
    let path = saved("lenet", "epsilon-plus", 2, dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let bad = dir.path().join("bad.lrpx");

    let mut b = bytes.clone();
    testing::set_format_version(&mut b, 99);
    std::fs::write(&bad, &b).unwrap();
    let text = load_error(&bad);
    assert!(text.contains("format version 99"), "{text}");

    let b = testing::rewrite(&bytes, |h| {
        h.set_target(
            "x86_64-unknown-linux-gnu",
            &["has_avx2", "has_imaginary_feature"],
        )
    })
    .unwrap();
    std::fs::write(&bad, &b).unwrap();
    let text = load_error(&bad);
    assert!(text.contains("has_imaginary_feature"), "{text}");
    // ... which recompiling the kernels for this CPU gets around.
    let e = Explainer::load_with(
        &bad,
        LoadOptions {
            code: CodeSource::Recompile,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    let x = npy(&fixture("lenet", "input.npy"));
    e.explain(x, Target::Top).unwrap();

    let b = testing::rewrite(&bytes, |h| h.set_target("aarch64-unknown-linux-gnu", &[])).unwrap();
    std::fs::write(&bad, &b).unwrap();
    assert!(load_error(&bad).contains("aarch64"));

    // Another lrpc version of the same format is read.
    let b = testing::rewrite(&bytes, |h| h.set_lrpc_version("0.0.1")).unwrap();
    std::fs::write(&bad, &b).unwrap();
    Explainer::load(&bad).unwrap();
}

#[test]
fn loading_with_another_thread_count_tiles_again() {
    let dir = tempfile::tempdir().unwrap();
    let x = npy(&fixture("residual", "input.npy"));
    let path = saved("residual", "epsilon-gamma-box", 2, dir.path());
    let model = Model::load(fixture("residual", "model.onnx"), &ImportOptions::default()).unwrap();
    for threads in [1, 3] {
        let here = Explainer::with_options(
            &model,
            Method::parse("epsilon-gamma-box").unwrap(),
            options(threads),
        )
        .unwrap();
        let loaded = Explainer::load_with(
            &path,
            LoadOptions {
                threads,
                ..LoadOptions::default()
            },
        )
        .unwrap();
        let (a, b) = (
            loaded.explain(x.clone(), Target::Top).unwrap(),
            here.explain(x.clone(), Target::Top).unwrap(),
        );
        assert_eq!(bits(&a.relevance), bits(&b.relevance), "{threads} threads");
    }
}

#[test]
fn samples_run_in_batches_of_the_explainer() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved("lenet", "epsilon-gamma-box", 2, dir.path());
    let e = Explainer::load(&path).unwrap();
    let x = npy(&fixture("lenet", "input.npy"));
    let per = x.len();
    let values: Vec<f32> = (0..3)
        .flat_map(|k| x.f32s().unwrap().iter().map(move |v| v * (k + 1) as f32))
        .collect();
    let targets = [Some(3), None, Some(9)];
    let all = e.explain_samples(&values, 3, &targets).unwrap();
    assert_eq!(all.relevance.shape(), &[3, 1, 28, 28]);
    assert_eq!(all.logits.shape(), &[3, 10]);
    for k in 0..3 {
        let xs = lrpc::ir::Tensor::from_f32(x.shape().to_vec(), values[k * per..][..per].to_vec())
            .unwrap();
        let one = e
            .explain(xs, targets[k].map_or(Target::Top, Target::Index))
            .unwrap();
        assert_eq!(all.targets[k], one.targets[0]);
        assert_eq!(
            &bits(&all.relevance)[k * per..][..per],
            bits(&one.relevance).as_slice()
        );
    }
    assert!(e.explain_samples(&values[1..], 3, &[]).is_err());
    assert!(e.explain_samples(&values, 3, &[None]).is_err());
}
