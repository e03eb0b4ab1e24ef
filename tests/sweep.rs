//! A seeded sweep of odd shapes through the compiled backend: Conv with every stride, dilation,
//! group count and asymmetric padding, max and average pools (with ceil mode and padding), batch
//! sizes above 1 and sizes that are not multiples of the vector width; each model explained by
//! several methods on both engines. Once more under guard pages (docs/architecture.md): every
//! buffer, constant and table then sits against an inaccessible page, so any out-of-bounds
//! access by generated code faults.

mod common;

use std::sync::Arc;

use common::relative_error;
use lrpc::ir::ops::{Activation, AutoPad, Conv, Flatten, Gemm, GlobalPool, Pool, PoolKind, Window};
use lrpc::ir::{Fact, Graph, Op, Output, Tensor};
use lrpc::relevance::Method;
use lrpc::runtime::GuardSide;
use lrpc::{Engine, ExplainOptions, Explainer, Model, Target};

/// A small deterministic generator (xorshift), so the sweep needs no dependency and is the
/// same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    fn normal(&mut self) -> f32 {
        // Sum of uniforms: close enough to a normal for weights.
        (0..4)
            .map(|_| (self.below(2001) as f32 / 1000.0) - 1.0)
            .sum::<f32>()
            * 0.6
    }
    fn tensor(&mut self, shape: Vec<usize>) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_f32(shape, (0..n).map(|_| self.normal()).collect()).unwrap()
    }
}

fn constant(g: &mut Graph, name: &str, t: Tensor) -> lrpc::ir::NodeIndex {
    let t = Arc::new(t);
    let n = g.add(name, Op::Const(t.clone()), &[]);
    g.node_mut(n).fact = Some(Fact::constant(t));
    n
}

fn window(strides: Vec<usize>, dilations: Vec<usize>, pads: Vec<usize>, ceil: bool) -> Window {
    Window {
        strides,
        dilations,
        pads,
        auto_pad: AutoPad::NotSet,
        ceil_mode: ceil,
    }
}

/// Conv -> ReLU -> pool -> Conv (grouped) -> ReLU -> global or plain pool -> Flatten -> Gemm.
fn model(seed: u64) -> (Model, Tensor, String) {
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let batch = r.range(1, 3);
    let cin = r.range(1, 3);
    let (h, w) = (r.range(7, 13), r.range(7, 13));
    let mut g = Graph::new(format!("sweep-{seed}"), 13);
    let x = g.add("x", Op::Input, &[]);
    g.node_mut(x).fact = Some(Fact::new(lrpc::ir::DType::F32, vec![batch, cin, h, w]));
    g.inputs.push(x);
    let c1 = r.range(2, 5);
    let (k1h, k1w) = (r.range(1, 3), r.range(1, 3));
    let s1 = vec![r.range(1, 2), r.range(1, 2)];
    let d1 = vec![r.range(1, 2), r.range(1, 2)];
    let p1 = vec![r.below(2), r.below(3), r.below(3), r.below(2)];
    let w1 = constant(&mut g, "w1", r.tensor(vec![c1, cin, k1h, k1w]));
    let b1 = constant(&mut g, "b1", r.tensor(vec![c1]));
    let conv1 = Conv {
        kernel_shape: None,
        window: window(s1.clone(), d1.clone(), p1.clone(), false),
        group: 1,
    };
    let y = g.add("conv1", Op::Conv(conv1), &[x, w1, b1]);
    let y = g.add("relu1", Op::Activation(Activation::Relu), &[y]);
    let kind = if r.below(2) == 0 {
        PoolKind::Max
    } else {
        PoolKind::Average {
            count_include_pad: r.below(2) == 0,
        }
    };
    let pk = r.range(2, 3);
    let ceil = r.below(2) == 0;
    let pool = Pool {
        kind,
        kernel_shape: vec![pk, pk],
        window: window(vec![r.range(1, 2); 2], vec![], vec![r.below(2); 4], ceil),
    };
    let y = g.add("pool1", Op::Pool(pool.clone()), &[y]);
    let group = [1, c1][r.below(2)];
    let c2 = group * r.range(1, 3);
    let w2 = constant(&mut g, "w2", r.tensor(vec![c2, c1 / group, 2, 2]));
    let conv2 = Conv {
        kernel_shape: None,
        window: window(vec![1, 1], vec![1, 1], vec![1, 0, 0, 1], false),
        group,
    };
    let y = g.add("conv2", Op::Conv(conv2), &[y, w2]);
    let y = g.add("relu2", Op::Activation(Activation::Relu), &[y]);
    let y = if r.below(2) == 0 {
        g.add("gap", Op::GlobalPool(GlobalPool::Average), &[y])
    } else {
        g.add("gmp", Op::GlobalPool(GlobalPool::Max), &[y])
    };
    let y = g.add("flatten", Op::Flatten(Flatten { axis: 1 }), &[y]);
    let classes = r.range(3, 7);
    let wf = constant(&mut g, "wf", r.tensor(vec![classes, c2]));
    let bf = constant(&mut g, "bf", r.tensor(vec![classes]));
    let gemm = Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: false,
        trans_b: true,
    };
    let out = g.add("fc", Op::Gemm(gemm), &[y, wf, bf]);
    g.outputs.push(Output {
        name: "logits".into(),
        node: out,
        logits: None,
    });
    let what = format!(
        "seed {seed}: batch {batch} {cin}x{h}x{w}, conv1 {c1}x{k1h}x{k1w} s{s1:?} d{d1:?} p{p1:?}, {pool:?}, conv2 group {group} -> {c2}"
    );
    let model = Model::from_graph(g).unwrap_or_else(|e| panic!("{what}: {e}"));
    let x = r.tensor(vec![batch, cin, h, w]);
    (model, x, what)
}

const METHODS: &[&str] = &[
    "epsilon",
    "epsilon-gamma-box",
    "epsilon-alpha2-beta1-flat",
    "gradient",
    "guided-backprop",
];

fn sweep(seeds: std::ops::Range<u64>, guard: Option<GuardSide>) {
    let mut failures = vec![];
    let (mut cases, mut nonzero) = (0, 0);
    for seed in seeds {
        let (model, x, what) = model(seed);
        eprintln!("{what}");
        for m in METHODS {
            let method = Method::parse(m).unwrap();
            let opts = |engine| ExplainOptions {
                engine,
                threads: 2,
                guard,
                profile: false,
                layers: true,
            };
            let want = Explainer::with_options(&model, method.clone(), opts(Engine::Interpreter))
                .and_then(|e| e.explain(x.clone(), Target::Top))
                .unwrap_or_else(|e| panic!("{what} {m}: {e}"));
            let got = Explainer::with_options(&model, method, opts(Engine::Compiled))
                .and_then(|e| e.explain(x.clone(), Target::Top))
                .unwrap_or_else(|e| panic!("{what} {m}: {e}"));
            cases += 1;
            if want.relevance.f32s().unwrap().iter().any(|&v| v != 0.0) {
                nonzero += 1;
            }
            let err = relative_error(&got.relevance, &want.relevance);
            let logits = relative_error(&got.logits, &want.logits);
            if err > 1e-5 || logits > 1e-5 {
                failures.push(format!(
                    "{what} {m}: relevance {err:.2e}, logits {logits:.2e}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // A sweep of dead networks would compare zeros with zeros.
    assert!(
        nonzero * 10 >= cases * 8,
        "only {nonzero} of {cases} explanations are non-zero"
    );
}

#[test]
fn odd_shapes_compile_to_the_interpreters_results() {
    sweep(0..40, None);
}

#[test]
fn odd_shapes_stay_in_bounds_under_guard_pages() {
    sweep(0..12, Some(GuardSide::After));
    sweep(0..12, Some(GuardSide::Before));
}
