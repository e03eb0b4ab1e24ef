//! `lrpc regions` against fixtures/shapes_regions.py (Zennit epsilon-plus-flat relevance of the
//! shapes model pooled over the object boxes and the object / surround / background masks):
//! inside, outside, context use and region shares per image; bad boxes and masks refused.

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

const BASE: [&str; 10] = [
    "regions",
    "fixtures/shapes/model.onnx",
    "--data",
    "fixtures/shapes_data/data.npy",
    "--labels",
    "fixtures/shapes_data/labels.npy",
    "--method",
    "epsilon-plus-flat",
    "--limit",
    "20",
];

fn close(a: f64, b: f64, scale: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-3 * scale.max(1.0),
        "{what}: {a} vs reference {b}"
    );
}

#[test]
fn boxes_and_masks_agree_with_the_reference() {
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/shapes_data/regions_ref.json")).unwrap(),
    )
    .unwrap();
    let mut args = BASE.to_vec();
    args.extend(["--boxes", "fixtures/shapes_data/boxes.csv", "--json"]);
    let (code, out, err) = lrpc(&args);
    assert_eq!(code, 0, "{err}");
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut args = BASE.to_vec();
    args.extend(["--masks", "fixtures/shapes_data/masks", "--json"]);
    let (code, out, err) = lrpc(&args);
    assert_eq!(code, 0, "{err}");
    let masked: serde_json::Value = serde_json::from_str(&out).unwrap();
    let refs = r["images"].as_array().unwrap();
    assert_eq!(refs.len(), 20);
    for (k, want) in refs.iter().enumerate() {
        let s = &got["images"][k]["stats"];
        let total = want["positive_sum"].as_f64().unwrap().abs();
        for side in ["inside", "outside"] {
            for kind in ["signed", "positive"] {
                close(
                    s[side][kind].as_f64().unwrap(),
                    want[side][kind].as_f64().unwrap(),
                    total,
                    &format!("image {k} {side} {kind}"),
                );
            }
        }
        // A ratio of two near-zero sums is float noise in both; compare the well-posed ones.
        let inside = want["inside"]["signed"].as_f64().unwrap().abs();
        if inside > 1e-2 * total.max(1.0) {
            let c = s["context_use"]["signed"].as_f64().unwrap();
            close(
                c,
                want["context_use"]["signed"].as_f64().unwrap(),
                1.0,
                &format!("image {k} context use"),
            );
        }
        let shares = &masked["images"][k]["share"]["signed"];
        for name in ["background", "object", "surround"] {
            if let Some(w) = want["share"]["signed"][name].as_f64()
                && want["relevance_sum"].as_f64().unwrap().abs() > 1e-2
            {
                close(
                    shares[name].as_f64().unwrap(),
                    w,
                    1.0,
                    &format!("image {k} share {name}"),
                );
            }
        }
    }
}

#[test]
fn bad_boxes_and_masks_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let boxes = dir.path().join("b.csv");
    std::fs::write(&boxes, "index,x0,y0,x1,y1\n0,1,1,40,5\n").unwrap();
    let masks = dir.path().join("m");
    std::fs::create_dir(&masks).unwrap();
    image::GrayImage::new(5, 5)
        .save(masks.join("0.png"))
        .unwrap();
    for (extra, says) in [
        (
            vec!["--boxes", boxes.to_str().unwrap()],
            "outside the 32 x 32 image",
        ),
        (
            vec!["--masks", masks.to_str().unwrap()],
            "the mask is 5 x 5",
        ),
        (vec![], "give --boxes"),
    ] {
        let mut args = BASE.to_vec();
        args.extend(&extra);
        let (code, out, err) = lrpc(&args);
        assert_eq!(code, 1, "{args:?}: {out}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn an_image_folder_gives_the_same_shares_as_the_array() {
    // fixtures/shapes_data/images/<k>.png are rows k of data.npy (pixel / 255, mean 0.5, std
    // 0.25); a CSV puts them in row order.
    let dir = tempfile::tempdir().unwrap();
    let labels = lrpc::io::npy::read(&root().join("fixtures/shapes_data/labels.npy")).unwrap();
    let mut csv = String::from("file,label\n");
    for k in 0..6 {
        let png = root().join(format!("fixtures/shapes_data/images/{k}.png"));
        csv += &format!("{},{}\n", png.display(), labels.i64s().unwrap()[k]);
    }
    let csv_path = dir.path().join("images.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let run = |data: &str, labels: &str, extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "regions",
            "fixtures/shapes/model.onnx",
            "--data",
            data,
            "--labels",
            labels,
            "--method",
            "epsilon-plus-flat",
            "--masks",
            "fixtures/shapes_data/masks",
            "--limit",
            "6",
            "--json",
        ];
        args.extend(extra);
        let (code, out, err) = lrpc(&args);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&out).unwrap()
    };
    let array = run(
        "fixtures/shapes_data/data.npy",
        "fixtures/shapes_data/labels.npy",
        &[],
    );
    let folder = run(
        "fixtures/shapes_data/images",
        csv_path.to_str().unwrap(),
        &["--mean", "0.5", "--std", "0.25"],
    );
    for k in 0..6 {
        for name in ["background", "object", "surround"] {
            let a = array["images"][k]["share"]["signed"][name]
                .as_f64()
                .unwrap();
            let b = folder["images"][k]["share"]["signed"][name]
                .as_f64()
                .unwrap();
            assert!(
                (a - b).abs() < 1e-4,
                "image {k} {name}: array {a} vs folder {b}"
            );
        }
    }
}
