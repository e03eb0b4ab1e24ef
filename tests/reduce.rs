//! The Reduce family on computed values: LowerReduce rewrites it into transposes, a global pool
//! and pointwise ops; the result, interpreted and compiled, equals the reduction the interpreter
//! computes directly (the graph before the passes), over kinds, axes and keepdims.

use lrpc::Model;
use lrpc::ir::ops::{Reduce, ReduceKind};
use lrpc::ir::{DType, Fact, Graph, Op, Output, Tensor};

const KINDS: &[ReduceKind] = &[
    ReduceKind::Sum,
    ReduceKind::Mean,
    ReduceKind::Max,
    ReduceKind::Min,
    ReduceKind::L1,
    ReduceKind::L2,
    ReduceKind::LogSumExp,
    ReduceKind::SumSquare,
];

fn graph(r: &Reduce, shape: &[usize]) -> Graph {
    let mut g = Graph::new("reduce-test", 18);
    let x = g.add("x", Op::Input, &[]);
    g.node_mut(x).fact = Some(Fact::new(DType::F32, shape.to_vec()));
    g.inputs.push(x);
    let y = g.add("reduced", Op::Reduce(r.clone()), &[x]);
    g.outputs.push(Output {
        name: "y".into(),
        node: y,
        logits: None,
    });
    g
}

fn close(a: &Tensor, b: &Tensor) -> bool {
    a.shape() == b.shape()
        && a.f32s()
            .unwrap()
            .iter()
            .zip(b.f32s().unwrap())
            .all(|(p, q)| (p - q).abs() <= 1e-5 * q.abs().max(1.0))
}

#[test]
fn lowered_reductions_equal_the_direct_ones() {
    let shape = [2, 3, 5];
    let n: usize = shape.iter().product();
    let x = Tensor::from_f32(
        shape.to_vec(),
        (0..n)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect(),
    )
    .unwrap();
    let axes: [Option<Vec<i64>>; 5] = [
        None,
        Some(vec![1]),
        Some(vec![0, 2]),
        Some(vec![-1]),
        Some(vec![0]),
    ];
    for &kind in KINDS {
        for a in &axes {
            for keepdims in [true, false] {
                let r = Reduce {
                    kind,
                    axes: a.clone(),
                    keepdims,
                };
                let what = format!("{} axes {a:?} keepdims {keepdims}", kind.name());
                let direct = lrpc::interp::eval(&Op::Reduce(r.clone()), &[&x])
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                let model =
                    Model::from_graph(graph(&r, &shape)).unwrap_or_else(|e| panic!("{what}: {e}"));
                let g = model.graph();
                let ops: Vec<&str> = g
                    .topo_order()
                    .unwrap()
                    .into_iter()
                    .map(|n| g.node(n).op.name())
                    .collect();
                assert!(
                    !ops.iter().any(|o| o.starts_with("Reduce")),
                    "{what}: {ops:?}"
                );
                let interpreted = model.run_interpreted(x.clone()).unwrap();
                let compiled = model
                    .run(x.clone())
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert!(
                    close(&interpreted[0], &direct),
                    "{what}: interpreted {interpreted:?} vs {direct:?}"
                );
                assert!(
                    close(&compiled[0], &direct),
                    "{what}: compiled {compiled:?} vs {direct:?}"
                );
            }
        }
    }
}

#[test]
fn reduce_prod_is_evaluated_but_not_compiled() {
    let r = Reduce {
        kind: ReduceKind::Prod,
        axes: Some(vec![1]),
        keepdims: false,
    };
    let model = Model::from_graph(graph(&r, &[2, 3])).unwrap();
    let x = Tensor::from_f32(vec![2, 3], vec![1.0, 2.0, 3.0, -1.0, 0.5, 4.0]).unwrap();
    assert_eq!(
        model.run_interpreted(x.clone()).unwrap()[0].f32s().unwrap(),
        &[6.0, -2.0]
    );
    let err = model
        .run(x)
        .expect_err("compiled code refuses ReduceProd")
        .to_string();
    assert!(err.contains("ReduceProd"), "{err}");
}
