//! If nodes (fixtures/control/, made by fixtures/control.py): a condition known at import (a
//! constant, or a comparison of the input's static shape) inlines the taken branch, and the
//! branch not taken is never imported (both fixtures hold an op no importer knows there); a
//! condition computed from the input data is refused by name.

mod common;

use common::{fixture, npy};
use lrpc::Model;
use lrpc::onnx::ImportOptions;

fn expected(case: &str) -> Vec<f32> {
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("control", "meta.json")).expect("meta.json"))
            .expect("meta.json parses");
    meta["expected"][case][0]
        .as_array()
        .expect("an expected row")
        .iter()
        .map(|v| v.as_f64().expect("a number") as f32)
        .collect()
}

#[test]
fn known_conditions_inline_the_taken_branch() {
    for case in ["if_constant", "if_shape"] {
        let model = Model::load(
            fixture("control", &format!("{case}.onnx")),
            &ImportOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{case}: {e}"));
        let out = model
            .run(npy(&fixture("control", "input.npy")))
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(out[0].f32s().unwrap(), expected(case), "{case}");
        let graph = model.graph();
        let ops: Vec<String> = graph
            .topo_order()
            .expect("acyclic")
            .into_iter()
            .map(|n| graph.node(n).op.name().to_string())
            .collect();
        assert!(
            !ops.iter().any(|o| o == "If" || o == "NoSuchOp"),
            "{case}: {ops:?}"
        );
    }
}

#[test]
fn a_condition_from_the_data_is_refused() {
    let err = match Model::load(
        fixture("control", "if_data.onnx"),
        &ImportOptions::default(),
    ) {
        Ok(_) => panic!("if_data must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("If") && err.contains("computed at run time") && err.contains("if_data"),
        "{err}"
    );
}
