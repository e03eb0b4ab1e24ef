//! ONNX's own node tests (fixtures/node/, made by fixtures/node_tests.py from the onnx package's
//! test generator): one-node models with inputs and expected outputs, over every op type lrpc
//! reads and its neighbours. Every case must end in one of two ways:
//!
//! - lrpc refuses it with an error (an op, type or form it does not support), or
//! - lrpc runs it, and then the interpreter, and the compiled code where it compiles, match the
//!   expected outputs within the case's tolerance. A result outside it is a failure: a silent
//!   wrong answer.
//!
//! A panic is a failure either way. The cases that run are listed in
//! fixtures/node/passing.txt; each of them must keep running (regenerate the list with
//! `LRPC_WRITE_NODE_PASSING=1 cargo test --test node_tests`, and review the diff).

mod common;

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use common::{npy, root};
use lrpc::ir::{Tensor, TensorData};
use lrpc::onnx::ImportOptions;
use lrpc::{Engine, Model};

/// How one case ended.
enum Outcome {
    /// Both engines matched (`compiled` false when compiled code refused it).
    Passed {
        compiled: bool,
    },
    Refused(String),
    Wrong(String),
}

/// Element types the fixtures store that lrpc reads as model inputs and outputs.
const READABLE: &[&str] = &[
    "FLOAT", "DOUBLE", "INT64", "INT32", "INT16", "INT8", "UINT8", "UINT16", "UINT32", "UINT64",
    "BOOL",
];

fn values(t: &Tensor) -> Vec<f64> {
    match t.data() {
        TensorData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        TensorData::I64(v) => v.iter().map(|&x| x as f64).collect(),
    }
}

/// Whether `got` matches `want` as numpy.testing.assert_allclose(rtol, atol) would (NaN equal
/// to NaN), with float32's own rounding added to the tolerance.
fn close(got: &Tensor, want: &Tensor, rtol: f64, atol: f64) -> Result<(), String> {
    if got.shape() != want.shape() {
        return Err(format!(
            "shape {:?}, expected {:?}",
            got.shape(),
            want.shape()
        ));
    }
    let (g, w) = (values(got), values(want));
    for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
        let ok = (a.is_nan() && b.is_nan())
            || a == b
            || (a - b).abs() <= atol.max(1e-6) + rtol.max(1e-5) * b.abs();
        if !ok {
            return Err(format!("element {i}: {a}, expected {b}"));
        }
    }
    Ok(())
}

fn run_case(dir: &Path, case: &serde_json::Value) -> Outcome {
    let count = |key: &str| case[key].as_array().map_or(0, Vec::len);
    let inputs: Vec<Tensor> = (0..count("inputs"))
        .map(|i| npy(&dir.join(format!("in_{i}.npy"))))
        .collect();
    let outputs: Vec<Tensor> = (0..count("outputs"))
        .map(|i| npy(&dir.join(format!("out_{i}.npy"))))
        .collect();
    let (rtol, atol) = (
        case["rtol"].as_f64().unwrap_or(1e-3),
        case["atol"].as_f64().unwrap_or(1e-7),
    );
    // As given (every input fed at run time); if refused, with every input but the first
    // fixed as a constant (scales, axes, shapes are constants in real models).
    let names: Vec<String> = case["inputs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v["name"].as_str().unwrap_or("").to_string())
        .collect();
    let plain = Model::load(dir.join("model.onnx"), &ImportOptions::default()).and_then(|m| {
        m.run_feeds_interpreted(&inputs)
            .map(|g| (m, g, inputs.clone()))
    });
    let attempt = match plain {
        Ok(x) => Ok(x),
        Err(first) if inputs.len() > 1 => {
            let options = ImportOptions {
                constants: names[1..]
                    .iter()
                    .cloned()
                    .zip(inputs[1..].iter().cloned())
                    .collect(),
                ..ImportOptions::default()
            };
            Model::load(dir.join("model.onnx"), &options)
                .and_then(|m| {
                    m.run_feeds_interpreted(&inputs[..1])
                        .map(|g| (m, g, inputs[..1].to_vec()))
                })
                .map_err(|_| first)
        }
        Err(e) => Err(e),
    };
    let (model, got, inputs) = match attempt {
        Ok(x) => x,
        Err(e) => return Outcome::Refused(e.to_string()),
    };
    for (k, (g, w)) in got.iter().zip(&outputs).enumerate() {
        if let Err(e) = close(g, w, rtol, atol) {
            return Outcome::Wrong(format!("interpreter, output {k}: {e}"));
        }
    }
    if got.len() != outputs.len() {
        return Outcome::Wrong(format!("{} outputs, expected {}", got.len(), outputs.len()));
    }
    // Compiled code: the explained input goes first, the others by name.
    let graph = model.graph();
    let explained = graph.explained_input();
    let names: Vec<String> = model.inputs().into_iter().map(|i| i.name).collect();
    let Some(pos) = graph.inputs.iter().position(|&n| n == explained) else {
        return Outcome::Passed { compiled: false };
    };
    let forward = match model.forward(Engine::Compiled, 1) {
        Ok(f) => f,
        Err(_) => return Outcome::Passed { compiled: false },
    };
    let others: Vec<(&str, Tensor)> = names
        .iter()
        .zip(&inputs)
        .enumerate()
        .filter(|&(i, _)| i != pos)
        .map(|(_, (n, t))| (n.as_str(), t.clone()))
        .collect();
    match model.run_forward_with(&forward, inputs[pos].clone(), &others) {
        Ok(got) => {
            for (k, (g, w)) in got.iter().zip(&outputs).enumerate() {
                if let Err(e) = close(g, w, rtol, atol) {
                    return Outcome::Wrong(format!("compiled, output {k}: {e}"));
                }
            }
            Outcome::Passed { compiled: true }
        }
        // A refusal at run time (a feed outside what compiled code carries) is not an answer.
        Err(_) => Outcome::Passed { compiled: false },
    }
}

#[test]
fn node_tests_run_right_or_are_refused() {
    let base = root().join("fixtures/node");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(base.join("index.json")).expect("index.json"))
            .expect("index.json parses");
    let cases = index["cases"].as_object().expect("cases");
    let (mut passed, mut compiled, mut refused, mut unreadable) = (BTreeSet::new(), 0, 0, 0);
    let mut failures = Vec::new();
    for (name, case) in cases {
        let types = ["inputs", "outputs"].iter().flat_map(|k| {
            case[*k]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| v["dtype"].as_str().unwrap_or("?").to_string())
        });
        let types: Vec<String> = types.collect();
        if types.iter().any(|t| !READABLE.contains(&t.as_str())) {
            // Not an lrpc case: the fixture's element type has no lrpc counterpart.
            unreadable += 1;
            continue;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| run_case(&base.join(name), case)))
            .unwrap_or_else(|p| {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Outcome::Wrong(format!("panicked: {msg}"))
            });
        match outcome {
            Outcome::Passed { compiled: c } => {
                passed.insert(name.clone());
                compiled += usize::from(c);
            }
            Outcome::Refused(e) => {
                refused += 1;
                if std::env::var_os("LRPC_NODE_VERBOSE").is_some() {
                    println!("refused {name}: {e}");
                }
                if e.contains('\n') {
                    failures.push(format!("{name}: a refusal must be one line: {e:?}"));
                }
            }
            Outcome::Wrong(e) => failures.push(format!("{name}: {e}")),
        }
    }
    println!(
        "node tests: {} cases, {} run and match ({compiled} also compiled), {refused} refused, \
         {unreadable} left out (element types lrpc does not read: float16, strings, ...)",
        cases.len(),
        passed.len()
    );
    let list = base.join("passing.txt");
    if std::env::var_os("LRPC_WRITE_NODE_PASSING").is_some() {
        let text: String = passed.iter().map(|n| format!("{n}\n")).collect();
        std::fs::write(&list, text).expect("writing passing.txt");
    }
    let expected: BTreeSet<String> = std::fs::read_to_string(&list)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    for lost in expected.difference(&passed) {
        failures.push(format!("{lost}: listed in passing.txt but no longer runs"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(!expected.is_empty(), "fixtures/node/passing.txt is empty");
}
