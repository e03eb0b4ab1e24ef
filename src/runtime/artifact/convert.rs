//! Programs to and from their protobuf form. Decoding checks only what it needs to build the
//! Rust values (indices that must fit, blobs inside the payload); everything about what the
//! values mean is checked by `validate` when the executable is made.

use std::borrow::Cow;
use std::sync::Arc;

use super::proto::{self, operand::Kind as OperandKind, step::Kind as StepKind};
use super::write::ALIGN;
use super::{Bytes, MethodInfo, SourceInfo};
use crate::ir::DType;
use crate::ir::ops::{Activation, BinaryOp, Lrn, Plane, Pointwise, Softmax};
use crate::runtime::code::{MachineCode, Patch, Symbol};
use crate::runtime::elementwise::{Access, Instr, Kernel};
use crate::runtime::executable::Executable;
use crate::runtime::explainer::{InputSpec, Layer, Sampling, Spec};
use crate::runtime::gemm::ConvShape;
use crate::runtime::program::{KernelDesc, Operand, Port, Program, Step};
use crate::runtime::slab::Slab;
use crate::runtime::table::{Reduce, TableKernel, WindowKernel};

type Decode<T> = Result<T, String>;

// ---------------------------------------------------------------- the payload, when writing

/// The payload being laid out: byte chunks in order, named sections, and the constants
/// already placed (so a constant shared by two programs is stored once).
#[derive(Default)]
pub struct Payload<'a> {
    chunks: Vec<Cow<'a, [u8]>>,
    len: usize,
    /// (name, start) of each section, in order.
    sections: Vec<(String, usize)>,
    placed: Vec<(usize, usize, proto::Blob)>,
    programs: usize,
}

impl<'a> Payload<'a> {
    fn section(&mut self, name: String) {
        self.sections.push((name, self.len));
    }

    fn push(&mut self, bytes: Cow<'a, [u8]>, align: usize) -> proto::Blob {
        let pad = self.len.next_multiple_of(align) - self.len;
        if pad > 0 {
            self.chunks.push(Cow::Owned(vec![0u8; pad]));
            self.len += pad;
        }
        let blob = proto::Blob {
            offset: self.len as u64,
            length: bytes.len() as u64,
        };
        self.len += bytes.len();
        self.chunks.push(bytes);
        blob
    }

    /// Places `data`, or returns where the same elements already are.
    fn data<T: bytemuck::Pod>(&mut self, data: &'a [T]) -> proto::Blob {
        let key = (data.as_ptr() as usize, data.len());
        if let Some((_, _, b)) = self.placed.iter().find(|(p, l, _)| (*p, *l) == key) {
            return *b;
        }
        let blob = self.push(Cow::Borrowed(bytemuck::cast_slice(data)), ALIGN.1);
        self.placed.push((key.0, key.1, blob));
        blob
    }

    /// The sections (large ones split, each with its CRC-32) and the bytes to write.
    pub fn layout(self) -> (Vec<proto::Section>, Vec<Cow<'a, [u8]>>) {
        let mut ranges: Vec<(String, usize, usize)> = Vec::new();
        for (i, (name, start)) in self.sections.iter().enumerate() {
            let end = self.sections.get(i + 1).map_or(self.len, |s| s.1);
            if end - start <= ALIGN.2 {
                ranges.push((name.clone(), *start, end));
            } else {
                for (k, a) in (*start..end).step_by(ALIGN.2).enumerate() {
                    ranges.push((format!("{name}.{k}"), a, (a + ALIGN.2).min(end)));
                }
            }
        }
        // Feed the chunks through one hasher per range, in order.
        let mut sections = Vec::with_capacity(ranges.len());
        let mut ranges = ranges.into_iter().peekable();
        let mut hasher = crc32fast::Hasher::new();
        let mut at = 0usize;
        let mut current = ranges.next();
        for chunk in &self.chunks {
            let mut rest: &[u8] = chunk;
            while !rest.is_empty() {
                let Some((_, _, end)) = &current else { break };
                let take = (end - at).min(rest.len());
                hasher.update(&rest[..take]);
                rest = &rest[take..];
                at += take;
                if at == *end {
                    if let Some((name, start, end)) = current.take() {
                        sections.push(proto::Section {
                            name,
                            offset: start as u64,
                            length: (end - start) as u64,
                            crc32: std::mem::take(&mut hasher).finalize(),
                        });
                    }
                    current = ranges.next();
                }
            }
        }
        // Empty trailing sections.
        while let Some((name, start, end)) = current.take() {
            sections.push(proto::Section {
                name,
                offset: start as u64,
                length: (end - start) as u64,
                crc32: crc32fast::hash(&[]),
            });
            current = ranges.next();
        }
        (sections, self.chunks)
    }
}

fn operand_proto(o: Operand) -> proto::Operand {
    proto::Operand {
        kind: Some(match o {
            Operand::Buffer(b) => OperandKind::Buffer(b as u64),
            Operand::Const(c) => OperandKind::Constant(c as u64),
        }),
    }
}

fn dims(v: &[usize]) -> Vec<u64> {
    v.iter().map(|&d| d as u64).collect()
}

fn port_proto(p: &Port) -> proto::Port {
    proto::Port {
        name: p.name.clone(),
        operand: Some(operand_proto(p.operand)),
        shape: dims(&p.shape),
    }
}

fn plane_proto(q: &Plane) -> Vec<u64> {
    dims(&q.to_values())
}

fn conv_proto(c: &ConvShape) -> proto::ConvShape {
    proto::ConvShape {
        batch: c.batch as u64,
        cin: c.cin as u64,
        cout: c.cout as u64,
        group: c.group as u64,
        plane: plane_proto(&c.plane),
    }
}

fn instr_proto(i: &Instr) -> proto::Instr {
    let (op, args, params, input) = match *i {
        Instr::Load(k) => ("load".to_string(), vec![], vec![], k as u64),
        Instr::Const(c) => ("const".to_string(), vec![], vec![c], 0),
        Instr::Binary(op, a, b) => (op.name().to_lowercase(), vec![a, b], vec![], 0),
        Instr::Pointwise(p, a) => (format!("pointwise:{}", p.name()), vec![a], p.params(), 0),
        Instr::Activation(f, a) => (format!("activation:{}", f.name()), vec![a], f.params(), 0),
        Instr::ActivationGrad(f, x, dy) => {
            (format!("grad:{}", f.name()), vec![x, dy], f.params(), 0)
        }
        Instr::Select(c, a, b) => ("select".to_string(), vec![c, a, b], vec![], 0),
    };
    proto::Instr {
        op,
        args,
        params,
        input,
    }
}

fn kernel_proto(k: &KernelDesc) -> proto::Kernel {
    use proto::kernel::Kind;
    proto::Kernel {
        kind: Some(match k {
            KernelDesc::Elementwise(e) => Kind::Elementwise(proto::ElementwiseKernel {
                inputs: e
                    .inputs
                    .iter()
                    .map(|a| match *a {
                        Access::Full => proto::Access {
                            full: true,
                            inner: 0,
                            period: 0,
                        },
                        Access::Periodic { inner, period } => proto::Access {
                            full: false,
                            inner: inner as u64,
                            period: period as u64,
                        },
                    })
                    .collect(),
                body: e.body.iter().map(instr_proto).collect(),
                output: e.output,
            }),
            KernelDesc::Table(t) => Kind::Table(match *t {
                TableKernel::Gather { fill } => proto::TableKernel {
                    scatter: false,
                    fill,
                },
                TableKernel::Scatter => proto::TableKernel {
                    scatter: true,
                    fill: 0.0,
                },
            }),
            KernelDesc::Window { kernel, backward } => {
                let (whole_tensor, last, column_height) = match kernel.reduce {
                    Reduce::Indices {
                        whole_tensor,
                        last,
                        column_height,
                    } => (whole_tensor, last, column_height as u64),
                    _ => (false, false, 0),
                };
                Kind::Window(proto::WindowKernel {
                    reduce: match kernel.reduce {
                        Reduce::Max => "max",
                        Reduce::Average => "average",
                        Reduce::Indices { .. } => "indices",
                    }
                    .into(),
                    in_plane: kernel.in_plane as u64,
                    outputs: kernel.outputs as u64,
                    taps: kernel.taps as u64,
                    backward: *backward,
                    whole_tensor,
                    last,
                    column_height,
                })
            }
        }),
    }
}

fn step_proto(s: &Step, name: &str) -> proto::Step {
    let o = |x: Operand| Some(operand_proto(x));
    let kind = match s {
        Step::Elementwise {
            kernel,
            inputs,
            out,
            len,
        } => StepKind::Elementwise(proto::ElementwiseStep {
            kernel: *kernel as u64,
            inputs: inputs.iter().map(|&i| operand_proto(i)).collect(),
            out: *out as u64,
            len: *len as u64,
        }),
        Step::Table {
            kernel,
            src,
            table,
            out,
            len,
        } => StepKind::Table(proto::TableStep {
            kernel: *kernel as u64,
            src: o(*src),
            table: *table as u64,
            out: *out as u64,
            len: *len as u64,
        }),
        Step::Window {
            kernel,
            x,
            dy,
            table,
            counts,
            out,
            planes,
        } => StepKind::Window(proto::WindowStep {
            kernel: *kernel as u64,
            x: o(*x),
            dy: dy.map(operand_proto),
            table: *table as u64,
            counts: *counts as u64,
            out: *out as u64,
            planes: *planes as u64,
        }),
        Step::Conv {
            conv,
            x,
            w,
            bias,
            out,
            col,
        } => StepKind::Conv(proto::ConvStep {
            conv: Some(conv_proto(conv)),
            x: o(*x),
            w: o(*w),
            bias: bias.map(operand_proto),
            out: *out as u64,
            col: col.map(|c| c as u64),
        }),
        Step::ConvTranspose {
            conv,
            dy,
            w,
            out,
            col,
        } => StepKind::ConvTranspose(proto::ConvStep {
            conv: Some(conv_proto(conv)),
            x: o(*dy),
            w: o(*w),
            bias: None,
            out: *out as u64,
            col: col.map(|c| c as u64),
        }),
        Step::Gemm {
            dims: (m, k, n),
            a,
            a_strides,
            b,
            b_strides,
            alpha,
            c,
            out,
        } => StepKind::Gemm(proto::GemmStep {
            dims: dims(&[*m, *k, *n]),
            a: o(*a),
            a_strides: dims(&[a_strides.0, a_strides.1]),
            b: o(*b),
            b_strides: dims(&[b_strides.0, b_strides.1]),
            alpha: *alpha,
            c: c.map(|c| operand_proto(c.0)),
            c_table: c.map_or(0, |c| c.1 as u64),
            beta: c.map_or(0.0, |c| c.2),
            out: *out as u64,
        }),
        Step::MatMul {
            dims: (m, k, n),
            pairs,
            a,
            b,
            out,
        } => StepKind::Matmul(proto::MatMulStep {
            dims: dims(&[*m, *k, *n]),
            pairs: pairs
                .iter()
                .flat_map(|&(x, y)| [x as u64, y as u64])
                .collect(),
            a: o(*a),
            b: o(*b),
            out: *out as u64,
        }),
        Step::Softmax { op, shape, x, out } => StepKind::Softmax(proto::SoftmaxStep {
            axis: op.axis,
            coerce_2d: op.coerce_2d,
            shape: dims(shape),
            x: o(*x),
            out: *out as u64,
        }),
        Step::Lrn {
            op,
            shape,
            x,
            dy,
            out,
        } => StepKind::Lrn(proto::LrnStep {
            size: op.size as u64,
            alpha: op.alpha,
            beta: op.beta,
            bias: op.bias,
            shape: dims(shape),
            x: o(*x),
            dy: dy.map(operand_proto),
            out: *out as u64,
        }),
        Step::Lookup {
            outer,
            rows,
            inner,
            ids,
            data,
            indices,
            out,
        } => StepKind::Lookup(proto::LookupStep {
            outer: *outer as u64,
            rows: *rows as u64,
            inner: *inner as u64,
            ids: *ids as u64,
            data: o(*data),
            indices: o(*indices),
            out: *out as u64,
        }),
        Step::Total { src, len, out } => StepKind::Total(proto::TotalStep {
            src: o(*src),
            len: *len as u64,
            out: *out as u64,
        }),
    };
    proto::Step {
        name: name.to_string(),
        kind: Some(kind),
    }
}

/// Program `exe` in its protobuf form; its code, tables and constants go into `payload`.
pub fn program_proto<'a>(
    exe: &'a Executable,
    code: Option<&'a [MachineCode]>,
    payload: &mut Payload<'a>,
) -> proto::Program {
    let p = exe.program();
    let k = payload.programs;
    payload.programs += 1;
    payload.section(format!("program{k}.code"));
    let code = code
        .unwrap_or_default()
        .iter()
        .map(|m| proto::Code {
            bytes: Some(payload.push(Cow::Borrowed(&m.bytes), ALIGN.0)),
            patches: m
                .patches
                .iter()
                .map(|p| proto::Patch {
                    offset: p.offset,
                    symbol: p.symbol.name().to_string(),
                    addend: p.addend,
                })
                .collect(),
        })
        .collect();
    payload.section(format!("program{k}.tables"));
    let tables = p
        .tables
        .iter()
        .map(|t| payload.data(t.as_slice()))
        .collect();
    payload.section(format!("program{k}.constants"));
    let consts = p
        .consts
        .iter()
        .map(|c| payload.data(c.as_slice()))
        .collect();
    let layout = exe.layout();
    proto::Program {
        buffers: dims(&p.buffers),
        consts,
        tables,
        kernels: p.kernels.iter().map(kernel_proto).collect(),
        code,
        steps: p
            .steps
            .iter()
            .zip(&p.step_names)
            .map(|(s, n)| step_proto(s, n))
            .collect(),
        split: p.split as u64,
        inputs: p.inputs.iter().map(port_proto).collect(),
        outputs: p.outputs.iter().map(port_proto).collect(),
        totals: p.totals.iter().map(port_proto).collect(),
        kept: dims(&p.kept),
        threads: p.threads as u64,
        layout: dims(&layout.offsets),
        arena: layout.len as u64,
    }
}

pub fn source_proto(s: &SourceInfo) -> proto::Source {
    proto::Source {
        file: s.file.clone(),
        sha256: s.sha256.clone(),
        size: s.size,
    }
}

pub fn method_proto(m: &MethodInfo) -> proto::Method {
    let bound = |(values, per_channel): &(Vec<f32>, bool)| proto::Bound {
        values: values.clone(),
        per_channel: *per_channel,
    };
    proto::Method {
        name: m.name.clone(),
        epsilon: m.epsilon,
        gamma: m.gamma,
        low: Some(bound(&m.low)),
        high: Some(bound(&m.high)),
        alpha: m.alpha,
        beta: m.beta,
        bias_factor: m.bias_factor,
        overrides: m
            .overrides
            .iter()
            .map(|(pattern, rule, text)| proto::Override {
                pattern: pattern.clone(),
                rule: rule.clone(),
                text: text.clone(),
            })
            .collect(),
        samples: m.samples as u64,
        noise_level: m.noise_level,
        steps: m.steps as u64,
    }
}

pub fn spec_proto(s: &Spec) -> proto::Spec {
    proto::Spec {
        inputs: s
            .inputs
            .iter()
            .map(|i| proto::Input {
                name: i.name.clone(),
                dtype: i.dtype.to_string(),
                shape: dims(&i.shape),
                has_limit: i.limit.is_some(),
                limit: i.limit.as_ref().map_or(0, |l| l.0),
                limit_reason: i.limit.as_ref().map(|l| l.1.clone()).unwrap_or_default(),
            })
            .collect(),
        explained: s.explained as u64,
        logits_shape: dims(&s.logits_shape),
        relevance_shape: if s.relevance_at_embedding() {
            dims(&s.relevance_shape)
        } else {
            Vec::new()
        },
        embedding_rows: s.embedding_rows as u64,
        outputs: s.outputs.clone(),
        layers: s
            .layers
            .iter()
            .map(|l| proto::Layer {
                name: l.name.clone(),
                op: l.op.clone(),
                rule: l.rule.clone(),
            })
            .collect(),
    }
}

// ---------------------------------------------------------------- reading

fn size(v: u64) -> Decode<usize> {
    usize::try_from(v).map_err(|_| format!("{v} does not fit this machine's word"))
}

fn sizes(v: &[u64]) -> Decode<Vec<usize>> {
    v.iter().map(|&d| size(d)).collect()
}

fn operand(o: Option<&proto::Operand>) -> Decode<Operand> {
    match o.and_then(|o| o.kind) {
        Some(OperandKind::Buffer(b)) => Ok(Operand::Buffer(size(b)?)),
        Some(OperandKind::Constant(c)) => Ok(Operand::Const(size(c)?)),
        None => Err("an operand is missing".into()),
    }
}

fn port(p: &proto::Port) -> Decode<Port> {
    Ok(Port {
        name: p.name.clone(),
        operand: operand(p.operand.as_ref())?,
        shape: sizes(&p.shape)?,
    })
}

fn pair(v: &[u64], what: &str) -> Decode<(usize, usize)> {
    match v {
        [a, b] => Ok((size(*a)?, size(*b)?)),
        _ => Err(format!("{what} must hold 2 values, not {}", v.len())),
    }
}

fn triple(v: &[u64], what: &str) -> Decode<(usize, usize, usize)> {
    match v {
        [a, b, c] => Ok((size(*a)?, size(*b)?, size(*c)?)),
        _ => Err(format!("{what} must hold 3 values, not {}", v.len())),
    }
}

fn conv(c: Option<&proto::ConvShape>) -> Decode<ConvShape> {
    let c = c.ok_or("a convolution's shape is missing")?;
    let q = sizes(&c.plane)?;
    let values: [usize; 21] = q
        .as_slice()
        .try_into()
        .map_err(|_| format!("a convolution plane has {} values, not 21", q.len()))?;
    Ok(ConvShape {
        batch: size(c.batch)?,
        cin: size(c.cin)?,
        cout: size(c.cout)?,
        group: size(c.group)?,
        plane: Plane::from_values(values),
    })
}

fn instr(i: &proto::Instr) -> Decode<Instr> {
    let arg = |k: usize| -> Decode<u32> {
        i.args
            .get(k)
            .copied()
            .ok_or_else(|| format!("instruction '{}' lacks argument {k}", i.op))
    };
    let binary = |op: BinaryOp| -> Decode<Instr> { Ok(Instr::Binary(op, arg(0)?, arg(1)?)) };
    let unknown = || {
        format!(
            "unknown instruction '{}' with {} parameters",
            i.op,
            i.params.len()
        )
    };
    Ok(match i.op.as_str() {
        "load" => Instr::Load(size(i.input)?),
        "const" => Instr::Const(*i.params.first().ok_or_else(unknown)?),
        "select" => Instr::Select(arg(0)?, arg(1)?, arg(2)?),
        op if !op.contains(':') => binary(
            *BinaryOp::ALL
                .iter()
                .find(|b| b.name().to_lowercase() == op)
                .ok_or_else(unknown)?,
        )?,
        op => {
            let (family, name) = op.split_once(':').ok_or_else(unknown)?;
            match family {
                "pointwise" => Instr::Pointwise(
                    Pointwise::from_parts(name, &i.params).ok_or_else(unknown)?,
                    arg(0)?,
                ),
                "activation" => Instr::Activation(
                    Activation::from_parts(name, &i.params).ok_or_else(unknown)?,
                    arg(0)?,
                ),
                "grad" => Instr::ActivationGrad(
                    Activation::from_parts(name, &i.params).ok_or_else(unknown)?,
                    arg(0)?,
                    arg(1)?,
                ),
                _ => return Err(unknown()),
            }
        }
    })
}

fn kernel(k: &proto::Kernel) -> Decode<KernelDesc> {
    use proto::kernel::Kind;
    Ok(match k.kind.as_ref().ok_or("a kernel is empty")? {
        Kind::Elementwise(e) => KernelDesc::Elementwise(Kernel {
            inputs: e
                .inputs
                .iter()
                .map(|a| {
                    Ok(if a.full {
                        Access::Full
                    } else {
                        Access::Periodic {
                            inner: size(a.inner)?,
                            period: size(a.period)?,
                        }
                    })
                })
                .collect::<Decode<_>>()?,
            body: e.body.iter().map(instr).collect::<Decode<_>>()?,
            output: e.output,
        }),
        Kind::Table(t) => KernelDesc::Table(if t.scatter {
            TableKernel::Scatter
        } else {
            TableKernel::Gather { fill: t.fill }
        }),
        Kind::Window(w) => KernelDesc::Window {
            kernel: WindowKernel {
                reduce: match w.reduce.as_str() {
                    "max" => Reduce::Max,
                    "average" => Reduce::Average,
                    "indices" => Reduce::Indices {
                        whole_tensor: w.whole_tensor,
                        last: w.last,
                        column_height: size(w.column_height)?,
                    },
                    other => return Err(format!("unknown window reduction '{other}'")),
                },
                in_plane: size(w.in_plane)?,
                outputs: size(w.outputs)?,
                taps: size(w.taps)?,
            },
            backward: w.backward,
        },
    })
}

fn step(s: &proto::Step) -> Decode<Step> {
    let o = |x: &Option<proto::Operand>| operand(x.as_ref());
    let opt = |x: &Option<proto::Operand>| x.as_ref().map(|x| operand(Some(x))).transpose();
    Ok(match s.kind.as_ref().ok_or("a step is empty")? {
        StepKind::Elementwise(e) => Step::Elementwise {
            kernel: size(e.kernel)?,
            inputs: e
                .inputs
                .iter()
                .map(|i| operand(Some(i)))
                .collect::<Decode<_>>()?,
            out: size(e.out)?,
            len: size(e.len)?,
        },
        StepKind::Table(t) => Step::Table {
            kernel: size(t.kernel)?,
            src: o(&t.src)?,
            table: size(t.table)?,
            out: size(t.out)?,
            len: size(t.len)?,
        },
        StepKind::Window(w) => Step::Window {
            kernel: size(w.kernel)?,
            x: o(&w.x)?,
            dy: opt(&w.dy)?,
            table: size(w.table)?,
            counts: size(w.counts)?,
            out: size(w.out)?,
            planes: size(w.planes)?,
        },
        StepKind::Conv(c) => Step::Conv {
            conv: conv(c.conv.as_ref())?,
            x: o(&c.x)?,
            w: o(&c.w)?,
            bias: opt(&c.bias)?,
            out: size(c.out)?,
            col: c.col.map(size).transpose()?,
        },
        StepKind::ConvTranspose(c) => Step::ConvTranspose {
            conv: conv(c.conv.as_ref())?,
            dy: o(&c.x)?,
            w: o(&c.w)?,
            out: size(c.out)?,
            col: c.col.map(size).transpose()?,
        },
        StepKind::Gemm(g) => Step::Gemm {
            dims: triple(&g.dims, "GEMM dims")?,
            a: o(&g.a)?,
            a_strides: pair(&g.a_strides, "A's strides")?,
            b: o(&g.b)?,
            b_strides: pair(&g.b_strides, "B's strides")?,
            alpha: g.alpha,
            c: match &g.c {
                Some(c) => Some((operand(Some(c))?, size(g.c_table)?, g.beta)),
                None => None,
            },
            out: size(g.out)?,
        },
        StepKind::Matmul(m) => {
            if m.pairs.len() % 2 != 0 {
                return Err("MatMul pairs come in twos".into());
            }
            Step::MatMul {
                dims: triple(&m.dims, "MatMul dims")?,
                pairs: m
                    .pairs
                    .chunks(2)
                    .map(|c| Ok((size(c[0])?, size(c[1])?)))
                    .collect::<Decode<_>>()?,
                a: o(&m.a)?,
                b: o(&m.b)?,
                out: size(m.out)?,
            }
        }
        StepKind::Softmax(x) => Step::Softmax {
            op: Softmax {
                axis: x.axis,
                coerce_2d: x.coerce_2d,
            },
            shape: sizes(&x.shape)?,
            x: o(&x.x)?,
            out: size(x.out)?,
        },
        StepKind::Lrn(l) => Step::Lrn {
            op: Lrn {
                size: size(l.size)?,
                alpha: l.alpha,
                beta: l.beta,
                bias: l.bias,
            },
            shape: sizes(&l.shape)?,
            x: o(&l.x)?,
            dy: opt(&l.dy)?,
            out: size(l.out)?,
        },
        StepKind::Lookup(l) => Step::Lookup {
            outer: size(l.outer)?,
            rows: size(l.rows)?,
            inner: size(l.inner)?,
            ids: size(l.ids)?,
            data: o(&l.data)?,
            indices: o(&l.indices)?,
            out: size(l.out)?,
        },
        StepKind::Total(t) => Step::Total {
            src: o(&t.src)?,
            len: size(t.len)?,
            out: size(t.out)?,
        },
    })
}

/// Elements of type `T` in the artifact's bytes.
struct Mapped {
    map: Bytes,
    start: usize,
    bytes: usize,
}

impl<T: bytemuck::Pod> AsRef<[T]> for Mapped {
    fn as_ref(&self) -> &[T] {
        let all: &[u8] = (*self.map).as_ref();
        // Alignment and bounds were checked when the slab was made; `try` keeps this total.
        all.get(self.start..self.start + self.bytes)
            .and_then(|b| bytemuck::try_cast_slice(b).ok())
            .unwrap_or(&[])
    }
}

/// The payload range of `b`, checked.
fn range(b: &proto::Blob, payload: usize, align: usize) -> Decode<(usize, usize)> {
    let (at, len) = (size(b.offset)?, size(b.length)?);
    if at.checked_add(len).is_none_or(|e| e > payload) {
        return Err(format!(
            "a blob of {len} bytes at {at} lies outside the payload of {payload}"
        ));
    }
    if at % align != 0 || len % align.min(4) != 0 {
        return Err(format!("a blob at {at} of {len} bytes is misaligned"));
    }
    Ok((at, len))
}

fn mapped<T: bytemuck::Pod + Send + Sync + 'static>(
    b: &proto::Blob,
    map: &Bytes,
    payload_start: usize,
    payload: usize,
) -> Decode<Slab<T>>
where
    Mapped: AsRef<[T]>,
{
    let (at, len) = range(b, payload, 4)?;
    let m = Mapped {
        map: Arc::clone(map),
        start: payload_start + at,
        bytes: len,
    };
    // The bytes start on a 64-byte boundary and `at` is a multiple of 4, so the elements
    // are aligned.
    let n: &[T] = m.as_ref();
    if std::mem::size_of_val(n) != len {
        return Err(format!("a blob at {at} is not aligned for its elements"));
    }
    Ok(Slab::shared(Arc::new(m)))
}

/// Program `p` with its constants and tables mapped from `map` (payload at `payload_start`,
/// `payload` bytes long).
pub fn program(
    p: &proto::Program,
    map: &Bytes,
    payload_start: usize,
    payload: usize,
) -> Decode<Program> {
    let steps: Vec<Step> = p.steps.iter().map(step).collect::<Decode<_>>()?;
    Ok(Program {
        buffers: sizes(&p.buffers)?,
        consts: p
            .consts
            .iter()
            .map(|b| mapped::<f32>(b, map, payload_start, payload))
            .collect::<Decode<_>>()?,
        tables: p
            .tables
            .iter()
            .map(|b| mapped::<i32>(b, map, payload_start, payload))
            .collect::<Decode<_>>()?,
        kernels: p.kernels.iter().map(kernel).collect::<Decode<_>>()?,
        step_names: p.steps.iter().map(|s| s.name.clone()).collect(),
        steps,
        split: size(p.split)?,
        inputs: p.inputs.iter().map(port).collect::<Decode<_>>()?,
        outputs: p.outputs.iter().map(port).collect::<Decode<_>>()?,
        totals: p.totals.iter().map(port).collect::<Decode<_>>()?,
        kept: sizes(&p.kept)?,
        threads: size(p.threads)?.max(1),
    })
}

/// The stored machine code of `p`'s kernels, as (bytes, patches) in the payload.
pub fn code<'a>(p: &proto::Program, payload: &'a [u8]) -> Decode<Vec<(&'a [u8], Vec<Patch>)>> {
    p.code
        .iter()
        .map(|c| {
            let b = c.bytes.as_ref().ok_or("a kernel's code is missing")?;
            let (at, len) = range(b, payload.len(), 1)?;
            let patches = c
                .patches
                .iter()
                .map(|x| {
                    let symbol = Symbol::from_name(&x.symbol)
                        .ok_or_else(|| format!("code calls unknown symbol '{}'", x.symbol))?;
                    Ok(Patch {
                        offset: x.offset,
                        symbol,
                        addend: x.addend,
                    })
                })
                .collect::<Decode<_>>()?;
            Ok((&payload[at..at + len], patches))
        })
        .collect()
}

pub fn source(s: Option<&proto::Source>) -> SourceInfo {
    s.map(|s| SourceInfo {
        file: s.file.clone(),
        sha256: s.sha256.clone(),
        size: s.size,
    })
    .unwrap_or_default()
}

pub fn method(m: Option<&proto::Method>) -> Decode<MethodInfo> {
    let m = m.ok_or("the method is missing")?;
    let bound = |b: &Option<proto::Bound>| {
        b.as_ref()
            .map(|b| (b.values.clone(), b.per_channel))
            .unwrap_or_default()
    };
    Ok(MethodInfo {
        name: m.name.clone(),
        epsilon: m.epsilon,
        gamma: m.gamma,
        low: bound(&m.low),
        high: bound(&m.high),
        alpha: m.alpha,
        beta: m.beta,
        bias_factor: m.bias_factor,
        overrides: m
            .overrides
            .iter()
            .map(|o| (o.pattern.clone(), o.rule.clone(), o.text.clone()))
            .collect(),
        samples: size(m.samples)?,
        noise_level: m.noise_level,
        steps: size(m.steps)?,
    })
}

pub fn spec(s: Option<&proto::Spec>, m: &MethodInfo, source: &str) -> Decode<Spec> {
    let s = s.ok_or("the spec is missing")?;
    let sampling = if m.samples > 0 {
        Sampling::SmoothGrad {
            samples: m.samples,
            noise_level: m.noise_level,
        }
    } else if m.steps > 0 {
        Sampling::Integrated { steps: m.steps }
    } else {
        Sampling::Once
    };
    let inputs = s
        .inputs
        .iter()
        .map(|i| {
            Ok(InputSpec {
                name: i.name.clone(),
                dtype: match i.dtype.as_str() {
                    "f32" => DType::F32,
                    "i64" => DType::I64,
                    other => return Err(format!("input '{}' has dtype '{other}'", i.name)),
                },
                shape: sizes(&i.shape)?,
                limit: i.has_limit.then(|| (i.limit, i.limit_reason.clone())),
            })
        })
        .collect::<Decode<Vec<InputSpec>>>()?;
    let explained = size(s.explained)?;
    let Some(input) = inputs.get(explained) else {
        return Err(format!(
            "explained input {explained} of {} inputs",
            inputs.len()
        ));
    };
    let relevance_shape = if s.relevance_shape.is_empty() {
        input.shape.clone()
    } else {
        sizes(&s.relevance_shape)?
    };
    Ok(Spec {
        source: source.to_string(),
        explained,
        relevance_shape,
        embedding_rows: size(s.embedding_rows)?,
        inputs,
        logits_shape: sizes(&s.logits_shape)?,
        outputs: s.outputs.clone(),
        method: m.name.clone(),
        sampling,
        layers: s
            .layers
            .iter()
            .map(|l| Layer {
                name: l.name.clone(),
                op: l.op.clone(),
                rule: l.rule.clone(),
            })
            .collect(),
    })
}
