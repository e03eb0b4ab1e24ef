//! `lrpc evaluate` against fixtures/aopc_ref.py, the reference implementation of the region
//! perturbation protocol (torch + zennit heatmaps, numpy perturbation, onnxruntime scores): the
//! same SplitMix64 draws make the two agree far inside the statistical bound (each
//! method's AOPC within 2 standard errors, the same ranking where AOPCs differ by more than
//! 3 s.e.); here on the digits CI subset and the shapes data set; word deletion on the text
//! corpus; bad input refused in one line.

mod common;

use std::process::Command;

use common::root;

fn lrpc(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lrpc"))
        .args(args)
        .current_dir(root())
        .env_clear()
        .output()
        .expect("the lrpc binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(path: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(root().join(path)).unwrap()).unwrap()
}

/// Runs `lrpc evaluate --json` with the reference's protocol and compares every method.
fn agree(model: &str, data: &str, labels: &str, reference: &str, extra: &[&str]) {
    let r = json(reference);
    let methods: Vec<String> = r["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["method"].as_str().unwrap().to_string())
        .collect();
    let (patch, steps, seed) = (
        r["patch"].to_string(),
        r["steps"].to_string(),
        r["seed"].to_string(),
    );
    let list = methods.join(",");
    let mut args = vec![
        "evaluate",
        model,
        "--data",
        data,
        "--labels",
        labels,
        "--methods",
        &list,
        "--patch",
        &patch,
        "--steps",
        &steps,
        "--seed",
        &seed,
        "--target",
        "label",
        "--correct-only",
        "--perturb",
        r["perturb"].as_str().unwrap(),
        "--json",
        "--quiet",
    ];
    args.extend(extra);
    let (code, out, err) = lrpc(&args);
    assert_eq!(code, 0, "{err}");
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["n"], r["n"], "{reference}: samples evaluated");
    let aopc = |v: &serde_json::Value, m: &str| -> (f64, f64, Vec<f64>) {
        let e = v["methods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["method"] == m)
            .unwrap_or_else(|| panic!("{m} missing"));
        let curve = e["curve"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        (
            e["aopc"].as_f64().unwrap(),
            e["se"].as_f64().unwrap(),
            curve,
        )
    };
    let mut ours = Vec::new();
    for m in &methods {
        let (a, se, curve) = aopc(&got, m);
        let (ra, rse, rcurve) = aopc(&r, m);
        assert!(
            (a - ra).abs() <= 2.0 * rse,
            "{reference} {m}: AOPC {a} vs reference {ra} (s.e. {rse})"
        );
        // The shared random numbers make the agreement much closer than that.
        assert!(
            (a - ra).abs() <= 1e-3 * ra.abs().max(1.0),
            "{reference} {m}: {a} vs {ra}"
        );
        assert!(
            (se - rse).abs() <= 1e-3 * rse.max(1e-3),
            "{reference} {m}: s.e. {se} vs {rse}"
        );
        assert_eq!(curve.len(), rcurve.len(), "{reference} {m}: curve length");
        for (k, (c, rc)) in curve.iter().zip(&rcurve).enumerate() {
            assert!(
                (c - rc).abs() <= 1e-3 * rc.abs().max(1.0),
                "{reference} {m} step {k}: {c} vs {rc}"
            );
        }
        ours.push((m.clone(), a, rse));
    }
    // Ranked alike wherever the reference AOPCs differ by more than 3 s.e.
    for (m1, a1, s1) in &ours {
        for (m2, a2, s2) in &ours {
            let (r1, r2) = (aopc(&r, m1).0, aopc(&r, m2).0);
            if (r1 - r2).abs() > 3.0 * s1.max(*s2) {
                assert_eq!(
                    a1 > a2,
                    r1 > r2,
                    "{reference}: {m1} vs {m2} ranked differently"
                );
            }
        }
    }
}

#[test]
fn digits_ci_subset_agrees_with_the_reference() {
    // The reference's CI run is the first 100 rows as the whole data set.
    let dir = tempfile::tempdir().unwrap();
    let d = lrpc::io::npy::read(&root().join("fixtures/digits/data.npy")).unwrap();
    let l = lrpc::io::npy::read(&root().join("fixtures/digits/labels.npy")).unwrap();
    let per = d.len() / d.shape()[0];
    let mut shape = d.shape().to_vec();
    shape[0] = 100;
    let data = lrpc::ir::Tensor::from_f32(shape, d.f32s().unwrap()[..100 * per].to_vec()).unwrap();
    let labels = lrpc::ir::Tensor::from_i64(vec![100], l.i64s().unwrap()[..100].to_vec()).unwrap();
    let (dp, lp) = (dir.path().join("d.npy"), dir.path().join("l.npy"));
    lrpc::io::npy::write(&dp, &data).unwrap();
    lrpc::io::npy::write(&lp, &labels).unwrap();
    agree(
        "fixtures/digits/model.onnx",
        dp.to_str().unwrap(),
        lp.to_str().unwrap(),
        "fixtures/digits/aopc_ref_p2_ci.json",
        &[],
    );
}

#[test]
fn shapes_with_mean_perturbation_agrees_with_the_reference() {
    agree(
        "fixtures/shapes/model.onnx",
        "fixtures/shapes_data/data.npy",
        "fixtures/shapes_data/labels.npy",
        "fixtures/shapes_data/aopc_ref_mean.json",
        &[],
    );
}

#[test]
fn word_deletion_on_the_text_corpus() {
    let (code, out, err) = lrpc(&[
        "evaluate",
        "fixtures/text_lstm/model.onnx",
        "--data",
        "fixtures/text/test_ids.npy",
        "--labels",
        "fixtures/text/test_labels.npy",
        "--methods",
        "epsilon,random",
        "--epsilon",
        "0.001",
        "--order",
        "arras",
        "--steps",
        "3",
        "--json",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["perturb"], "delete");
    let m = v["methods"].as_array().unwrap();
    let get = |name: &str| m.iter().find(|e| e["method"] == name).unwrap();
    let (eps, rnd) = (get("epsilon"), get("random"));
    let (a, sa) = (eps["aopc"].as_f64().unwrap(), eps["se"].as_f64().unwrap());
    let (b, sb) = (rnd["aopc"].as_f64().unwrap(), rnd["se"].as_f64().unwrap());
    assert!(
        a > b + 3.0 * sa.max(sb),
        "deleting LRP's words first hurts more: {a} vs random {b}"
    );
    let acc = eps["accuracy"].as_array().expect("accuracy per step");
    assert_eq!(acc.len(), 4, "steps 0..=3");
    let acc: Vec<f64> = acc.iter().map(|x| x.as_f64().unwrap()).collect();
    assert!(
        acc[3] < acc[0],
        "deleting the relevant words of correct documents costs accuracy: {acc:?}"
    );
}

#[test]
fn bad_evaluation_input_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.npy");
    lrpc::io::npy::write(
        &short,
        &lrpc::ir::Tensor::from_i64(vec![3], vec![0, 1, 2]).unwrap(),
    )
    .unwrap();
    let far = dir.path().join("far.npy");
    let l = lrpc::io::npy::read(&root().join("fixtures/shapes_data/labels.npy")).unwrap();
    let mut v = l.i64s().unwrap().to_vec();
    v[5] = 99;
    lrpc::io::npy::write(&far, &lrpc::ir::Tensor::from_i64(vec![v.len()], v).unwrap()).unwrap();
    let base = [
        "evaluate",
        "fixtures/shapes/model.onnx",
        "--data",
        "fixtures/shapes_data/data.npy",
        "--quiet",
    ];
    for (extra, says) in [
        (
            vec!["--patch", "4", "--steps", "65"],
            "beyond the 64 regions",
        ),
        (
            vec!["--labels", short.to_str().unwrap()],
            "3 labels for 120 samples",
        ),
        (
            vec!["--labels", far.to_str().unwrap()],
            "sample 5 has label 99",
        ),
        (vec!["--patch", "40"], "larger than"),
        (vec!["--target", "label"], "needs --labels"),
        (
            vec!["--patch", "4", "--perturb", "delete"],
            "uniform, mean or zero",
        ),
    ] {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(&extra);
        let (code, out, err) = lrpc(&args);
        assert_eq!(code, 1, "{args:?}: {out}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn curves_are_plotted_as_png_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    for ext in ["png", "svg"] {
        let path = dir.path().join(format!("c.{ext}"));
        let (code, _, err) = lrpc(&[
            "evaluate",
            "fixtures/digits/model.onnx",
            "--data",
            "fixtures/digits/data.npy",
            "--methods",
            "epsilon,random",
            "--patch",
            "2",
            "--steps",
            "8",
            "--quiet",
            "--plot",
            path.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        if ext == "png" {
            let img = image::open(&path).unwrap();
            assert_eq!((img.width(), img.height()), (900, 600));
        } else {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.contains("epsilon (AOPC") && text.contains("random (AOPC"),
                "legend"
            );
            assert!(text.contains("regions perturbed"), "axis label");
        }
    }
    let bad = dir.path().join("c.gif");
    let (code, _, err) = lrpc(&[
        "evaluate",
        "fixtures/digits/model.onnx",
        "--data",
        "fixtures/digits/data.npy",
        "--methods",
        "random",
        "--patch",
        "2",
        "--steps",
        "4",
        "--quiet",
        "--plot",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains(".png or .svg"), "{err}");
}

#[test]
fn image_folders_evaluate_like_the_stacked_array() {
    // fixtures/digits/images (+ images.csv) hold rows 0..20 of data.npy as grey PNGs.
    let dir = tempfile::tempdir().unwrap();
    let d = lrpc::io::npy::read(&root().join("fixtures/digits/data.npy")).unwrap();
    let l = lrpc::io::npy::read(&root().join("fixtures/digits/labels.npy")).unwrap();
    let per = d.len() / d.shape()[0];
    let mut shape = d.shape().to_vec();
    shape[0] = 20;
    let (dp, lp) = (dir.path().join("d.npy"), dir.path().join("l.npy"));
    lrpc::io::npy::write(
        &dp,
        &lrpc::ir::Tensor::from_f32(shape, d.f32s().unwrap()[..20 * per].to_vec()).unwrap(),
    )
    .unwrap();
    lrpc::io::npy::write(
        &lp,
        &lrpc::ir::Tensor::from_i64(vec![20], l.i64s().unwrap()[..20].to_vec()).unwrap(),
    )
    .unwrap();
    let common = [
        "--methods",
        "epsilon,random",
        "--patch",
        "2",
        "--steps",
        "16",
        "--target",
        "label",
        "--json",
        "--quiet",
    ];
    let run = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["evaluate", "fixtures/digits/model.onnx"];
        args.extend(extra);
        args.extend(common);
        let (code, out, err) = lrpc(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
        serde_json::from_str(&out).unwrap()
    };
    let array = run(&[
        "--data",
        dp.to_str().unwrap(),
        "--labels",
        lp.to_str().unwrap(),
    ]);
    let folder = run(&[
        "--data",
        "fixtures/digits/images",
        "--labels",
        "fixtures/digits/images.csv",
        "--mean",
        "0.30587152",
        "--std",
        "0.3763538",
    ]);
    for k in 0..2 {
        let (a, b) = (&array["methods"][k], &folder["methods"][k]);
        let (x, y) = (a["aopc"].as_f64().unwrap(), b["aopc"].as_f64().unwrap());
        assert!(
            (x - y).abs() <= 1e-4 * x.abs(),
            "{}: array {x} vs folder {y}",
            a["method"]
        );
        assert_eq!(a["accuracy"], b["accuracy"]);
    }
    // Sub-folders as classes (sorted names): the labels the digits were filed under.
    let classes = run(&[
        "--data",
        "fixtures/digits/images",
        "--mean",
        "0.30587152",
        "--std",
        "0.3763538",
    ]);
    assert_eq!(classes["n"], 20);
    assert!(
        classes["methods"][0]["accuracy"][0].as_f64().unwrap() > 0.9,
        "labels from folder names"
    );
    // Images of another size without --resize, and an empty folder, are refused.
    let mixed = dir.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    image::GrayImage::new(8, 8)
        .save(mixed.join("a.png"))
        .unwrap();
    image::GrayImage::new(9, 8)
        .save(mixed.join("b.png"))
        .unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for (data, says) in [(&mixed, "give --resize"), (&empty, "holds no PNG or JPEG")] {
        let (code, _, err) = lrpc(&[
            "evaluate",
            "fixtures/digits/model.onnx",
            "--data",
            data.to_str().unwrap(),
            "--methods",
            "random",
            "--patch",
            "2",
            "--steps",
            "4",
            "--quiet",
        ]);
        assert_eq!(code, 1, "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(says), "{err}");
    }
}

#[test]
fn explain_compares_models_and_methods_in_one_grid() {
    let dir = tempfile::tempdir().unwrap();
    let twin = dir.path().join("twin.onnx");
    std::fs::copy(root().join("fixtures/digits/model.onnx"), &twin).unwrap();
    let d = lrpc::io::npy::read(&root().join("fixtures/digits/data.npy")).unwrap();
    let x =
        lrpc::ir::Tensor::from_f32(vec![3, 1, 8, 8], d.f32s().unwrap()[..3 * 64].to_vec()).unwrap();
    let xp = dir.path().join("x.npy");
    lrpc::io::npy::write(&xp, &x).unwrap();
    let grid = dir.path().join("grid.png");
    let (code, out, err) = lrpc(&[
        "explain",
        "fixtures/digits/model.onnx",
        "--model",
        twin.to_str().unwrap(),
        "--input",
        xp.to_str().unwrap(),
        "--method",
        "epsilon,gradient",
        "--heatmap",
        grid.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let cells = v["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4, "2 models x 2 methods");
    // The twin is the same network: the same relevance.
    assert_eq!(cells[0]["relevance_sum"], cells[2]["relevance_sum"]);
    let img = image::open(&grid).unwrap();
    assert!(
        img.width() > 4 * 160 && img.height() > 3 * 160,
        "{}x{}",
        img.width(),
        img.height()
    );
    let (code, _, err) = lrpc(&[
        "explain",
        "fixtures/digits/model.onnx",
        "--input",
        xp.to_str().unwrap(),
        "--method",
        "epsilon,gradient",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("give --heatmap"), "{err}");
}

#[test]
fn the_library_runs_the_study_on_tensors() {
    use lrpc::eval::data::Data;
    use lrpc::eval::perturbation::Order;
    use lrpc::eval::protocol::{self, Heatmaps, Perturb, Protocol};
    let d = lrpc::io::npy::read(&root().join("fixtures/digits/data.npy")).unwrap();
    let l = lrpc::io::npy::read(&root().join("fixtures/digits/labels.npy")).unwrap();
    let per = d.len() / d.shape()[0];
    let data = Data::Array(
        lrpc::ir::Tensor::from_f32(vec![100, 1, 8, 8], d.f32s().unwrap()[..100 * per].to_vec())
            .unwrap(),
    );
    let labels = l.i64s().unwrap()[..100].to_vec();
    let options = lrpc::onnx::ImportOptions {
        batch: Some(32),
        ..lrpc::onnx::ImportOptions::default()
    };
    let model = lrpc::Model::load(root().join("fixtures/digits/model.onnx"), &options).unwrap();
    let explainer =
        lrpc::Explainer::new(&model, lrpc::relevance::Method::parse("epsilon").unwrap()).unwrap();
    let methods = vec![
        (
            "epsilon".to_string(),
            Heatmaps::Explained {
                explainer: Box::new(explainer),
                square: false,
            },
        ),
        ("random".to_string(), Heatmaps::Random),
    ];
    let p = Protocol {
        patch: 2,
        steps: Some(16),
        order: Some(Order::Morf),
        perturb: Perturb::Uniform,
        pad_id: 0,
        probability: false,
        target_label: true,
        correct_only: true,
        seed: 2017,
        ids: None,
        range: None,
        means: None,
    };
    let mut calls = 0;
    let report = protocol::run(
        &model,
        (lrpc::Engine::Compiled, 2),
        &data,
        Some(&labels),
        &methods,
        &p,
        &mut |_, _, total| {
            assert_eq!(total, 2 * 98, "two methods over the 98 correct samples");
            calls += 1
        },
    )
    .unwrap();
    assert!(calls > 0, "progress is reported");
    let r = json("fixtures/digits/aopc_ref_p2_ci.json");
    assert_eq!(report.n as u64, r["n"].as_u64().unwrap());
    for m in &report.methods {
        let want = r["methods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["method"] == m.method.as_str())
            .unwrap()["aopc"]
            .as_f64()
            .unwrap();
        assert!(
            (m.aopc - want).abs() <= 1e-3 * want,
            "{}: {} vs {want}",
            m.method,
            m.aopc
        );
        assert_eq!(m.curve.len(), 17);
        assert_eq!(m.curve_se.len(), 17);
    }
}

/// A data set evaluated in parts (as Ray blocks are), each with its samples' ids in the whole
/// and the whole's value range, gives per-sample curves that summarise to the whole's report
/// exactly.
#[test]
fn parts_of_a_data_set_summarise_to_the_whole() {
    use lrpc::eval::data::Data;
    use lrpc::eval::perturbation::Order;
    use lrpc::eval::protocol::{self, Heatmaps, Perturb, Protocol};
    let d = lrpc::io::npy::read(&root().join("fixtures/digits/data.npy")).unwrap();
    let l = lrpc::io::npy::read(&root().join("fixtures/digits/labels.npy")).unwrap();
    let per = d.len() / d.shape()[0];
    let part = |a: usize, b: usize| {
        Data::Array(
            lrpc::ir::Tensor::from_f32(
                vec![b - a, 1, 8, 8],
                d.f32s().unwrap()[a * per..b * per].to_vec(),
            )
            .unwrap(),
        )
    };
    let labels = l.i64s().unwrap()[..40].to_vec();
    let options = lrpc::onnx::ImportOptions {
        batch: Some(8),
        ..lrpc::onnx::ImportOptions::default()
    };
    let model = lrpc::Model::load(root().join("fixtures/digits/model.onnx"), &options).unwrap();
    let methods = || {
        let explainer = lrpc::Explainer::new(
            &model,
            lrpc::relevance::Method::parse("epsilon-plus").unwrap(),
        )
        .unwrap();
        vec![
            (
                "epsilon-plus".to_string(),
                Heatmaps::Explained {
                    explainer: Box::new(explainer),
                    square: false,
                },
            ),
            ("random".to_string(), Heatmaps::Random),
        ]
    };
    let whole = part(0, 40);
    let mut p = Protocol {
        patch: 2,
        steps: Some(10),
        order: Some(Order::Morf),
        perturb: Perturb::Uniform,
        target_label: true,
        correct_only: true,
        seed: 5,
        ..Protocol::new(false)
    };
    let engine = (lrpc::Engine::Compiled, 1);
    let all = protocol::run(
        &model,
        engine,
        &whole,
        Some(&labels),
        &methods(),
        &p,
        &mut |_, _, _| {},
    )
    .unwrap();
    p.range = Some(whole.range().unwrap());
    let mut samples = vec![Vec::new(), Vec::new()];
    for (a, b) in [(0, 13), (13, 40)] {
        p.ids = Some((a as u64..b as u64).collect());
        let r = protocol::run(
            &model,
            engine,
            &part(a, b),
            Some(&labels[a..b]),
            &methods(),
            &p,
            &mut |_, _, _| {},
        )
        .unwrap();
        for (m, s) in r.methods.into_iter().zip(&mut samples) {
            s.extend(m.samples);
        }
    }
    for (m, s) in all.methods.iter().zip(samples) {
        let joined = protocol::summarise(&m.method, s);
        assert_eq!(joined.samples, m.samples, "{}: the same curves", m.method);
        assert_eq!(joined.aopc, m.aopc, "{}", m.method);
        assert_eq!(joined.se, m.se);
        assert_eq!(joined.curve, m.curve);
        assert_eq!(joined.curve_se, m.curve_se);
        assert_eq!(joined.scores, m.scores);
        assert_eq!(joined.accuracy, m.accuracy);
    }
    // Without the ids, the second part draws other noise: the test can tell.
    p.ids = None;
    let r = protocol::run(
        &model,
        engine,
        &part(13, 40),
        Some(&labels[13..40]),
        &methods(),
        &p,
        &mut |_, _, _| {},
    )
    .unwrap();
    assert_ne!(
        r.methods[1].samples,
        all.methods[1].samples[all.methods[1].samples.len() - r.methods[1].samples.len()..]
    );
}
