//! LSTM, GRU and RNN, imported unrolled over the (static) sequence: per direction and time step
//! a Gemm for the input, a Gemm for the previous state, a Split into gates, the activations and
//! the element-wise cell, exactly as exporters write a recurrent cell out. So the interpreter,
//! the compiled code, the gradient and the relevance rules need nothing recurrent: the same
//! network exported as the op or unrolled gives the same graph, and Arras et al.'s rule comes
//! from the rules of its parts (the fused sum of linear maps, the gate rule; docs/rules.md).
//! Y, Y_h and Y_c are separate nodes of the decomposition, so every IR node keeps one output.
//!
//! ONNX gate orders: LSTM W = [i, o, f, c], GRU W = [z, r, h]; B = [Wb, Rb]; P = [i, o, f].
//! `sequence_lens` freezes each sample's state past its length (a Where on a 0/1 mask) and zeroes
//! Y there; a reverse direction starts at each sample's last element, as onnxruntime does.

use std::sync::Arc;

use super::{Imported, NodeCtx, Source};
use crate::ir::ops::{
    Activation, BinaryOp, Cast, Concat, Gemm, Slice, SplitPart, Squeeze, Unsqueeze,
};
use crate::ir::{DType, Op, Tensor};

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Lstm,
    Gru,
    Rnn,
}

impl Kind {
    /// Gates per cell (rows of W per direction, in units of hidden_size).
    fn gates(self) -> usize {
        match self {
            Kind::Lstm => 4,
            Kind::Gru => 3,
            Kind::Rnn => 1,
        }
    }

    /// The ONNX default activation list of one direction.
    fn defaults(self) -> &'static [&'static str] {
        match self {
            Kind::Lstm => &["Sigmoid", "Tanh", "Tanh"],
            Kind::Gru => &["Sigmoid", "Tanh"],
            Kind::Rnn => &["Tanh"],
        }
    }
}

pub fn lstm(ctx: &NodeCtx) -> Result<Imported, String> {
    Cell::new(ctx, Kind::Lstm)?.build()
}

pub fn gru(ctx: &NodeCtx) -> Result<Imported, String> {
    Cell::new(ctx, Kind::Gru)?.build()
}

pub fn rnn(ctx: &NodeCtx) -> Result<Imported, String> {
    Cell::new(ctx, Kind::Rnn)?.build()
}

/// The attributes and constant operands of one recurrent node.
struct Cell<'a> {
    ctx: &'a NodeCtx<'a>,
    kind: Kind,
    out: Imported,
    hidden: usize,
    steps: usize,
    batch: usize,
    features: usize,
    directions: usize,
    reverse_only: bool,
    /// Batch-major X, Y and states (layout 1).
    batch_major: bool,
    clip: Option<f32>,
    input_forget: bool,
    linear_before_reset: bool,
    /// Per direction: the activations in ONNX order.
    activations: Vec<Vec<Activation>>,
    w: Arc<Tensor>,
    r: Arc<Tensor>,
    b: Option<Arc<Tensor>>,
    p: Option<Arc<Tensor>>,
    /// Constant sequence lengths, when given as a constant.
    lens: Option<Vec<i64>>,
}

/// Rows `start..start + count` of a row-major matrix stored as `values` with `cols` columns.
fn rows(values: &[f32], cols: usize, start: usize, count: usize) -> Vec<f32> {
    values[start * cols..(start + count) * cols].to_vec()
}

/// An activation of the list; only ONNX's defaults, in their places, are taken: the relevance
/// rules rely on sigmoid gates, and no other list is checked against a reference.
fn activation(name: &str, default: &str, op: &str) -> Result<Activation, String> {
    if !name.eq_ignore_ascii_case(default) {
        return Err(format!(
            "activation '{name}' where {op}'s default is '{default}': lrpc takes the default activations only (LSTM Sigmoid, Tanh, Tanh; GRU Sigmoid, Tanh; RNN Tanh)"
        ));
    }
    Ok(match default {
        "Sigmoid" => Activation::Sigmoid,
        _ => Activation::Tanh,
    })
}

impl<'a> Cell<'a> {
    fn new(ctx: &'a NodeCtx<'a>, kind: Kind) -> Result<Self, String> {
        let a = &ctx.attrs;
        let hidden = a
            .int("hidden_size")?
            .ok_or("the hidden_size attribute is missing")?;
        let hidden = usize::try_from(hidden)
            .ok()
            .filter(|&h| h > 0)
            .ok_or(format!("hidden_size {hidden} must be positive"))?;
        let direction = a.string("direction")?.unwrap_or_else(|| "forward".into());
        let (directions, reverse_only) = match direction.as_str() {
            "forward" => (1, false),
            "reverse" => (1, true),
            "bidirectional" => (2, false),
            d => {
                return Err(format!(
                    "direction '{d}' is not forward, reverse or bidirectional"
                ));
            }
        };
        let batch_major = match a.int_or("layout", 0)? {
            0 => false,
            1 => true,
            l => return Err(format!("layout {l} is not 0 or 1")),
        };
        let x = ctx.input_shape().ok_or("the input shape is unknown")?;
        let [d0, d1, features] = x.as_slice() else {
            return Err(format!("X has shape {x:?}; it must have rank 3"));
        };
        let (steps, batch) = if batch_major { (*d1, *d0) } else { (*d0, *d1) };
        if steps == 0 {
            return Err("X has an empty sequence axis".into());
        }
        let names = a.strings("activations")?;
        let per = kind.defaults().len();
        let op = ctx.node.op_type.as_str();
        let defaults: Vec<String> = kind.defaults().iter().map(|s| s.to_string()).collect();
        let list = |names: &[String]| -> Result<Vec<Activation>, String> {
            names
                .iter()
                .zip(kind.defaults())
                .map(|(n, d)| activation(n, d, op))
                .collect()
        };
        let activations = match names {
            None => vec![list(&defaults)?; directions],
            Some(names) if names.len() == per * directions => {
                names.chunks(per).map(list).collect::<Result<_, _>>()?
            }
            Some(names) => {
                return Err(format!(
                    "{} activations for {directions} direction(s); {op} takes {per} per direction",
                    names.len()
                ));
            }
        };
        if a.has("activation_alpha") || a.has("activation_beta") {
            // The default activations take no parameters; a list here means another activation.
            return Err("activation_alpha/activation_beta are not supported (the default activations take none)".into());
        }
        let clip = a.float("clip")?;
        if let Some(c) = clip
            && (c.is_nan() || c <= 0.0)
        {
            return Err(format!("clip {c} must be positive"));
        }
        let input_forget = kind == Kind::Lstm && a.flag("input_forget", false)?;
        let linear_before_reset = kind == Kind::Gru && a.flag("linear_before_reset", false)?;
        let need = |i: usize, role: &str| -> Result<Arc<Tensor>, String> {
            ctx.const_input(i, role)?
                .ok_or(format!("{role} (input {i}) is missing"))
        };
        let gates = kind.gates();
        let w = need(1, "W")?;
        let r = need(2, "R")?;
        let check = |t: &Tensor, role: &str, want: Vec<usize>| {
            if t.shape() == want.as_slice() {
                Ok(())
            } else {
                Err(format!(
                    "{role} has shape {:?}, expected {want:?}",
                    t.shape()
                ))
            }
        };
        check(&w, "W", vec![directions, gates * hidden, *features])?;
        check(&r, "R", vec![directions, gates * hidden, hidden])?;
        let b = ctx.const_input(3, "B")?;
        if let Some(b) = &b {
            check(b, "B", vec![directions, 2 * gates * hidden])?;
        }
        let p = if kind == Kind::Lstm {
            ctx.const_input(7, "P")?
        } else {
            None
        };
        if let Some(p) = &p {
            check(p, "P", vec![directions, 3 * hidden])?;
        }
        let lens = match ctx
            .consts
            .get(ctx.node.input.get(4).map_or("", |s| s.as_str()))
        {
            Some(t) if ctx.has_input(4) => {
                let v = t
                    .i64s()
                    .map_err(|_| "sequence_lens must hold integers".to_string())?
                    .to_vec();
                if v.len() != batch {
                    return Err(format!(
                        "sequence_lens has {} values for a batch of {batch}",
                        v.len()
                    ));
                }
                if let Some(l) = v.iter().find(|&&l| l < 0 || l as usize > steps) {
                    return Err(format!(
                        "sequence_lens holds {l}, outside the sequence of {steps} steps"
                    ));
                }
                Some(v)
            }
            _ => None,
        };
        Ok(Cell {
            ctx,
            kind,
            out: Imported::new(),
            hidden,
            steps,
            batch,
            features: *features,
            directions,
            reverse_only,
            batch_major,
            clip,
            input_forget,
            linear_before_reset,
            activations,
            w,
            r,
            b,
            p,
            lens,
        })
    }

    fn konst(&self, role: &str, shape: Vec<usize>, values: Vec<f32>) -> Result<Source, String> {
        let t = Tensor::from_f32(shape, values).map_err(|e| e.0)?;
        Ok(Source::Const(
            format!("{}.{role}", self.ctx.node.name),
            Arc::new(t),
        ))
    }

    fn add(&mut self, role: &str, op: Op, inputs: Vec<Source>) -> Source {
        self.out.add(role, op, inputs)
    }

    fn bin(&mut self, role: &str, op: BinaryOp, a: Source, b: Source) -> Source {
        self.add(role, Op::Binary(op), vec![a, b])
    }

    fn act(&mut self, role: &str, a: Activation, x: Source) -> Source {
        self.add(role, Op::Activation(a), vec![x])
    }

    /// The clip attribute on a pre-activation.
    fn clipped(&mut self, role: &str, x: Source) -> Source {
        match self.clip {
            Some(c) => self.act(
                &format!("{role}.clip"),
                Activation::Clip { min: -c, max: c },
                x,
            ),
            None => x,
        }
    }

    /// x W^T + bias, with W the rows `start..start + count` (units of hidden_size) of direction
    /// `d`'s weight `w` (W or R).
    fn project(
        &mut self,
        role: &str,
        x: Source,
        d: usize,
        recurrent: bool,
        (start, count): (usize, usize),
        bias: Option<Vec<f32>>,
    ) -> Result<Source, String> {
        let h = self.hidden;
        let (w, cols) = if recurrent {
            (self.r.clone(), h)
        } else {
            (self.w.clone(), self.features)
        };
        let per_direction = self.kind.gates() * h;
        let values = w.f32s().map_err(|e| e.0)?;
        let m = rows(values, cols, d * per_direction + start * h, count * h);
        let mut inputs = vec![
            x,
            self.konst(&format!("{role}.weight"), vec![count * h, cols], m)?,
        ];
        if let Some(b) = bias {
            inputs.push(self.konst(&format!("{role}.bias"), vec![count * h], b)?);
        }
        Ok(self.add(
            role,
            Op::Gemm(Gemm {
                alpha: 1.0,
                beta: 1.0,
                trans_a: false,
                trans_b: true,
            }),
            inputs,
        ))
    }

    /// Direction `d`'s bias for gates `start..start + count`: Wb, Rb or their sum.
    fn bias(
        &self,
        d: usize,
        (start, count): (usize, usize),
        w: bool,
        r: bool,
    ) -> Result<Option<Vec<f32>>, String> {
        let Some(b) = &self.b else {
            return Ok(None);
        };
        let h = self.hidden;
        let g = self.kind.gates() * h;
        let v = b.f32s().map_err(|e| e.0)?;
        let base = d * 2 * g;
        let part =
            |off: usize| v[base + off + start * h..base + off + (start + count) * h].to_vec();
        Ok(Some(match (w, r) {
            (true, true) => part(0).iter().zip(part(g)).map(|(a, b)| a + b).collect(),
            (true, false) => part(0),
            (false, true) => part(g),
            (false, false) => return Ok(None),
        }))
    }

    /// Splits `x` [batch, parts * hidden] into its gates.
    fn split(&mut self, role: &str, x: Source, parts: usize) -> Vec<Source> {
        (0..parts)
            .map(|index| {
                self.add(
                    &format!("{role}{index}"),
                    Op::SplitPart(SplitPart {
                        axis: 1,
                        sizes: None,
                        parts,
                        index,
                    }),
                    vec![x.clone()],
                )
            })
            .collect()
    }

    /// Direction `d`'s slice of an optional state input (initial_h, initial_c) as [batch,
    /// hidden], or zeros.
    /// Held ([`Op::Hold`]) so that a constant state stays an operand of the first step.
    fn initial(&mut self, input: usize, d: usize, role: &str) -> Result<Source, String> {
        let state = self.initial_value(input, d, &format!("{role}.value"))?;
        Ok(self.add(role, Op::Hold, vec![state]))
    }

    fn initial_value(&mut self, input: usize, d: usize, role: &str) -> Result<Source, String> {
        if !self.ctx.has_input(input) {
            return self.konst(
                role,
                vec![self.batch, self.hidden],
                vec![0.0; self.batch * self.hidden],
            );
        }
        let axis = i64::from(self.batch_major);
        let slice = self.add(
            &format!("{role}.slice"),
            Op::Slice(Slice {
                starts: vec![d as i64],
                ends: vec![d as i64 + 1],
                axes: Some(vec![axis]),
                steps: None,
            }),
            vec![Source::Input(input)],
        );
        Ok(self.add(
            role,
            Op::Squeeze(Squeeze {
                axes: Some(vec![axis]),
            }),
            vec![slice],
        ))
    }

    /// The 0/1 mask [batch, 1] of the samples still running at step `t`, or None when all are.
    fn mask(&mut self, t: usize) -> Result<Option<Source>, String> {
        if let Some(lens) = &self.lens {
            let m: Vec<f32> = lens
                .iter()
                .map(|&l| f32::from(u8::from((t as i64) < l)))
                .collect();
            if m.iter().all(|&v| v == 1.0) {
                return Ok(None);
            }
            return Ok(Some(self.konst(
                &format!("t{t}.mask"),
                vec![self.batch, 1],
                m,
            )?));
        }
        if !self.ctx.has_input(4) {
            return Ok(None);
        }
        let step = Source::Const(
            format!("{}.t{t}.index", self.ctx.node.name),
            Arc::new(Tensor::from_i64(vec![1], vec![t as i64]).map_err(|e| e.0)?),
        );
        let lens = self.add(
            &format!("t{t}.lens"),
            Op::Cast(Cast {
                to: DType::I64,
                boolean: false,
            }),
            vec![Source::Input(4)],
        );
        let running = self.bin(&format!("t{t}.running"), BinaryOp::Less, step, lens);
        let f = self.add(
            &format!("t{t}.running_f"),
            Op::Cast(Cast {
                to: DType::F32,
                boolean: false,
            }),
            vec![running],
        );
        Ok(Some(self.add(
            &format!("t{t}.mask"),
            Op::Unsqueeze(Unsqueeze { axes: vec![1] }),
            vec![f],
        )))
    }

    /// x_t: [batch, features].
    fn input_at(&mut self, t: usize) -> Source {
        let axis = i64::from(self.batch_major);
        let s = self.add(
            &format!("x{t}.slice"),
            Op::Slice(Slice {
                starts: vec![t as i64],
                ends: vec![t as i64 + 1],
                axes: Some(vec![axis]),
                steps: None,
            }),
            vec![Source::Input(0)],
        );
        self.add(
            &format!("x{t}"),
            Op::Squeeze(Squeeze {
                axes: Some(vec![axis]),
            }),
            vec![s],
        )
    }

    /// Where(mask, new, old) when a mask is given.
    fn hold(&mut self, role: &str, mask: &Option<Source>, new: Source, old: Source) -> Source {
        match mask {
            Some(m) => self.add(role, Op::Where, vec![m.clone(), new, old]),
            None => new,
        }
    }

    /// One LSTM step; returns (h, c).
    fn lstm_step(
        &mut self,
        p: &str,
        d: usize,
        x: Source,
        h: Source,
        c: Source,
    ) -> Result<(Source, Source), String> {
        let acts = self.activations[d].clone();
        let gx = self.project(
            &format!("{p}.gates_x"),
            x,
            d,
            false,
            (0, 4),
            self.bias(d, (0, 4), true, true)?,
        )?;
        let gh = self.project(&format!("{p}.gates_h"), h, d, true, (0, 4), None)?;
        let pre = self.bin(&format!("{p}.gates"), BinaryOp::Add, gx, gh);
        let g = self.split(&format!("{p}.gate"), pre, 4);
        let hidden = self.hidden;
        let peep = |cell: &mut Self,
                    k: usize,
                    pre: Source,
                    state: &Source,
                    role: &str|
         -> Result<Source, String> {
            let Some(pt) = cell.p.clone() else {
                return Ok(pre);
            };
            let v = pt.f32s().map_err(|e| e.0)?;
            let w = v[(d * 3 + k) * hidden..(d * 3 + k + 1) * hidden].to_vec();
            let w = cell.konst(&format!("{role}.peephole"), vec![hidden], w)?;
            let t = cell.bin(
                &format!("{role}.peephole_term"),
                BinaryOp::Mul,
                state.clone(),
                w,
            );
            Ok(cell.bin(&format!("{role}.with_peephole"), BinaryOp::Add, pre, t))
        };
        let i_pre = peep(self, 0, g[0].clone(), &c, &format!("{p}.i"))?;
        let i_pre = self.clipped(&format!("{p}.i"), i_pre);
        let i = self.act(&format!("{p}.i"), acts[0], i_pre.clone());
        let f = if self.input_forget {
            // f = 1 - i, written sigma(-a) so that the gate rule sees a sigmoid (with the
            // default sigmoid; another activation gets 1 - f(a)).
            if acts[0] == Activation::Sigmoid {
                let n = self.act(&format!("{p}.f.neg"), Activation::Neg, i_pre);
                self.act(&format!("{p}.f"), Activation::Sigmoid, n)
            } else {
                let one = self.konst(&format!("{p}.one"), vec![], vec![1.0])?;
                self.bin(&format!("{p}.f"), BinaryOp::Sub, one, i.clone())
            }
        } else {
            let f_pre = peep(self, 2, g[2].clone(), &c, &format!("{p}.f"))?;
            let f_pre = self.clipped(&format!("{p}.f"), f_pre);
            self.act(&format!("{p}.f"), acts[0], f_pre)
        };
        let g_pre = self.clipped(&format!("{p}.g"), g[3].clone());
        let cand = self.act(&format!("{p}.g"), acts[1], g_pre);
        let keep = self.bin(&format!("{p}.forget"), BinaryOp::Mul, f, c);
        let write = self.bin(&format!("{p}.write"), BinaryOp::Mul, i, cand);
        let c_new = self.bin(&format!("{p}.c"), BinaryOp::Add, keep, write);
        let o_pre = peep(self, 1, g[1].clone(), &c_new, &format!("{p}.o"))?;
        let o_pre = self.clipped(&format!("{p}.o"), o_pre);
        let o = self.act(&format!("{p}.o"), acts[0], o_pre);
        let hc = self.act(&format!("{p}.c_act"), acts[2], c_new.clone());
        let h_new = self.bin(&format!("{p}.h"), BinaryOp::Mul, o, hc);
        Ok((h_new, c_new))
    }

    /// One GRU step; returns h.
    fn gru_step(&mut self, p: &str, d: usize, x: Source, h: Source) -> Result<Source, String> {
        let acts = self.activations[d].clone();
        let gx = self.project(
            &format!("{p}.gates_x"),
            x,
            d,
            false,
            (0, 3),
            self.bias(d, (0, 3), true, false)?,
        )?;
        let gxs = self.split(&format!("{p}.gate_x"), gx, 3);
        let zr = self.project(
            &format!("{p}.gates_h"),
            h.clone(),
            d,
            true,
            (0, 2),
            self.bias(d, (0, 2), false, true)?,
        )?;
        let zrs = self.split(&format!("{p}.gate_h"), zr, 2);
        let z_pre = self.bin(
            &format!("{p}.z.pre"),
            BinaryOp::Add,
            gxs[0].clone(),
            zrs[0].clone(),
        );
        let z_pre = self.clipped(&format!("{p}.z"), z_pre);
        let r_pre = self.bin(
            &format!("{p}.r.pre"),
            BinaryOp::Add,
            gxs[1].clone(),
            zrs[1].clone(),
        );
        let r_pre = self.clipped(&format!("{p}.r"), r_pre);
        let z = self.act(&format!("{p}.z"), acts[0], z_pre.clone());
        let r = self.act(&format!("{p}.r"), acts[0], r_pre);
        let rb = self.bias(d, (2, 1), false, true)?;
        let hh = if self.linear_before_reset {
            let lin = self.project(&format!("{p}.h_lin"), h.clone(), d, true, (2, 1), rb)?;
            self.bin(&format!("{p}.h_reset"), BinaryOp::Mul, r, lin)
        } else {
            let reset = self.bin(&format!("{p}.h_reset"), BinaryOp::Mul, r, h.clone());
            self.project(&format!("{p}.h_lin"), reset, d, true, (2, 1), rb)?
        };
        let n_pre = self.bin(&format!("{p}.n.pre"), BinaryOp::Add, gxs[2].clone(), hh);
        let n_pre = self.clipped(&format!("{p}.n"), n_pre);
        let n = self.act(&format!("{p}.n"), acts[1], n_pre);
        // 1 - z, as sigma(-a) for the default sigmoid so that the gate rule sees a gate.
        let one_minus_z = if acts[0] == Activation::Sigmoid {
            let neg = self.act(&format!("{p}.z.neg"), Activation::Neg, z_pre);
            self.act(&format!("{p}.one_minus_z"), Activation::Sigmoid, neg)
        } else {
            let one = self.konst(&format!("{p}.one"), vec![], vec![1.0])?;
            self.bin(&format!("{p}.one_minus_z"), BinaryOp::Sub, one, z.clone())
        };
        let new = self.bin(&format!("{p}.update"), BinaryOp::Mul, one_minus_z, n);
        let old = self.bin(&format!("{p}.keep"), BinaryOp::Mul, z, h);
        Ok(self.bin(&format!("{p}.h"), BinaryOp::Add, new, old))
    }

    /// One simple RNN step; returns h.
    fn rnn_step(&mut self, p: &str, d: usize, x: Source, h: Source) -> Result<Source, String> {
        let act = self.activations[d][0];
        let gx = self.project(
            &format!("{p}.x"),
            x,
            d,
            false,
            (0, 1),
            self.bias(d, (0, 1), true, true)?,
        )?;
        let gh = self.project(&format!("{p}.hh"), h, d, true, (0, 1), None)?;
        let pre = self.bin(&format!("{p}.pre"), BinaryOp::Add, gx, gh);
        let pre = self.clipped(&format!("{p}.h"), pre);
        Ok(self.act(&format!("{p}.h"), act, pre))
    }

    /// Stacks per-direction [batch, hidden] tensors into a state output: [D, batch, hidden]
    /// (layout 0) or [batch, D, hidden] (layout 1).
    fn stack_states(&mut self, role: &str, states: Vec<Source>) -> Source {
        let axis = i64::from(self.batch_major);
        let parts: Vec<Source> = states
            .into_iter()
            .enumerate()
            .map(|(d, s)| {
                self.add(
                    &format!("{role}.d{d}"),
                    Op::Unsqueeze(Unsqueeze { axes: vec![axis] }),
                    vec![s],
                )
            })
            .collect();
        self.add(role, Op::Concat(Concat { axis }), parts)
    }

    fn build(mut self) -> Result<Imported, String> {
        // sequence_lens given at run time: checked against the sequence on the data.
        self.out.limits.push((4, self.steps as i64));
        let mut ys: Vec<Vec<Source>> = vec![Vec::new(); self.steps];
        let (mut last_h, mut last_c) = (Vec::new(), Vec::new());
        let masks: Vec<Option<Source>> = (0..self.steps)
            .map(|t| self.mask(t))
            .collect::<Result<_, _>>()?;
        let zeros = self.konst(
            "zeros",
            vec![self.batch, self.hidden],
            vec![0.0; self.batch * self.hidden],
        )?;
        for d in 0..self.directions {
            let reverse = self.reverse_only || d == 1;
            let mut h = self.initial(5, d, &format!("d{d}.h_init"))?;
            let mut c = if self.kind == Kind::Lstm {
                Some(self.initial(6, d, &format!("d{d}.c_init"))?)
            } else {
                None
            };
            let order: Vec<usize> = if reverse {
                (0..self.steps).rev().collect()
            } else {
                (0..self.steps).collect()
            };
            for t in order {
                let p = format!("d{d}.t{t}");
                let x = self.input_at(t);
                let mask = masks[t].clone();
                let (h_new, c_new) = match self.kind {
                    Kind::Lstm => {
                        let c_prev = c.clone().ok_or("an LSTM has a cell state")?;
                        let (h2, c2) = self.lstm_step(&p, d, x, h.clone(), c_prev)?;
                        (h2, Some(c2))
                    }
                    Kind::Gru => (self.gru_step(&p, d, x, h.clone())?, None),
                    Kind::Rnn => (self.rnn_step(&p, d, x, h.clone())?, None),
                };
                ys[t].push(self.hold(&format!("{p}.y"), &mask, h_new.clone(), zeros.clone()));
                h = self.hold(&format!("{p}.h_held"), &mask, h_new, h);
                if let (Some(c2), Some(c1)) = (c_new, c.clone()) {
                    c = Some(self.hold(&format!("{p}.c_held"), &mask, c2, c1));
                }
            }
            last_h.push(h);
            if let Some(c) = c {
                last_c.push(c);
            }
        }
        let used = |k: usize| self.ctx.node.output.get(k).is_some_and(|n| !n.is_empty());
        if used(0) {
            // Y: [T, D, batch, hidden] (layout 0) or [batch, T, D, hidden] (layout 1).
            let (dir_axis, time_axis) = if self.batch_major { (2, 1) } else { (1, 0) };
            let mut per_step = Vec::with_capacity(self.steps);
            for (t, y) in ys.into_iter().enumerate() {
                let parts: Vec<Source> = y
                    .into_iter()
                    .enumerate()
                    .map(|(d, s)| {
                        self.add(
                            &format!("y{t}.d{d}"),
                            Op::Unsqueeze(Unsqueeze {
                                axes: vec![time_axis, dir_axis],
                            }),
                            vec![s],
                        )
                    })
                    .collect();
                per_step.push(self.add(
                    &format!("y{t}"),
                    Op::Concat(Concat { axis: dir_axis }),
                    parts,
                ));
            }
            let y = self.add("", Op::Concat(Concat { axis: time_axis }), per_step);
            self.out.output(0, &y);
        }
        if used(1) {
            let yh = self.stack_states("Y_h", last_h);
            self.out.output(1, &yh);
        }
        if used(2) {
            if self.kind != Kind::Lstm {
                return Err(format!("{} has no output 2", self.ctx.node.op_type));
            }
            let yc = self.stack_states("Y_c", last_c);
            self.out.output(2, &yc);
        }
        Ok(self.out)
    }
}
