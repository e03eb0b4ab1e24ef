//! Every fixture, every composite and gradient method against Zennit's relevance
//! (design.md section 6: max|a - b| <= 1e-3 max|ref|), and conservation on bias-free nets.

mod common;

use common::{fixture, npy, relative_error};
use lrpc::onnx::ImportOptions;
use lrpc::relevance::{Bound, Method};
use lrpc::{Explainer, Model, Target};

const CASES: &[&str] = &[
    "mlp", "lenet", "residual", "concat", "textcnn", "oldopset", "newopset", "shapes", "video",
    "unet",
];

fn meta(case: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture(case, "meta.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn model(case: &str) -> Model {
    Model::load(fixture(case, "model.onnx"), &ImportOptions::default()).unwrap()
}

#[test]
fn every_method_matches_zennit() {
    let mut failures = vec![];
    let mut checked = 0;
    for case in CASES {
        let meta = meta(case);
        let rel = &meta["relevance"];
        let target = rel["target"].as_u64().unwrap() as usize;
        let model = model(case);
        let x = npy(&fixture(case, "input.npy"));
        for (name, m) in rel["methods"].as_object().unwrap() {
            let mut method = Method::parse(name).unwrap();
            // The box bounds Zennit used (the trained `shapes` model has its own pixel box).
            if let (Some(low), Some(high)) = (m["low"].as_f64(), m["high"].as_f64()) {
                method.params.low = Bound::Scalar(low as f32);
                method.params.high = Bound::Scalar(high as f32);
            }
            let explainer =
                Explainer::new(&model, method).unwrap_or_else(|e| panic!("{case} {name}: {e}"));
            let e = if name == "smoothgrad" {
                let noise = npy(&fixture(case, m["noise_file"].as_str().unwrap()));
                explainer.explain_smoothgrad(x.clone(), Target::Top, &noise)
            } else {
                explainer.explain(x.clone(), Target::Top)
            }
            .unwrap_or_else(|e| panic!("{case} {name}: {e}"));
            assert_eq!(e.targets, vec![target], "{case} {name}: target");
            let reference = npy(&fixture(case, m["file"].as_str().unwrap()));
            let err = relative_error(&e.relevance, &reference);
            checked += 1;
            eprintln!("{case:9} {name:26} {err:.2e}");
            if err > 1e-3 {
                failures.push(format!("{case} {name}: relative error {err:.3e}"));
            }
        }
    }
    assert!(checked >= 100, "only {checked} references checked");
    assert!(
        failures.is_empty(),
        "{} of {checked} differ from Zennit:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
