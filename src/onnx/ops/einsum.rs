//! Einsum, lowered at import to ops lrpc already runs and explains: each operand first sums
//! the letters no one else needs (ReduceSum), then operands are contracted pairwise, left to
//! right, as one batched MatMul (Transpose to [batch, kept, contracted] and Reshape to three
//! axes) or, with nothing to contract, a broadcast Mul; a final Transpose gives the output's
//! letter order. Lowering at import keeps every later stage (shapes, relevance rules, kernels)
//! free of a general tensor contraction, and a product with a constant operand is put on the
//! MatMul's right so it is a linear layer with a weight, as LRP rules need. Diagonals (a letter
//! twice in one term) and broadcasting between unequal sizes are refused.

use std::sync::Arc;

use super::{Imported, NodeCtx, Source};
use crate::ir::ops::{BinaryOp, Reduce, ReduceKind, Reshape, Transpose};
use crate::ir::{Op, Tensor};

/// One operand while the contraction is built: where it comes from, one letter per axis, its
/// shape, and whether it is a constant (known at import).
struct Term {
    src: Source,
    letters: Vec<char>,
    shape: Vec<usize>,
    constant: bool,
}

/// A parsed equation: the letters of every input term and of the output, with `...` expanded
/// to private letters (aligned to the right, as numpy broadcasts them).
struct Equation {
    inputs: Vec<Vec<char>>,
    output: Vec<char>,
}

/// Letters standing for the axes an ellipsis covers: outside ASCII, so no equation uses them.
fn ellipsis_letter(k: usize) -> char {
    char::from_u32(0x100 + k as u32).unwrap_or('\u{100}')
}

fn parse(equation: &str, ranks: &[usize]) -> Result<Equation, String> {
    let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (eq.as_str(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != ranks.len() {
        return Err(format!(
            "equation '{equation}' has {} input terms for {} inputs",
            terms.len(),
            ranks.len()
        ));
    }
    let mut parsed = Vec::with_capacity(terms.len());
    for (term, &rank) in terms.iter().zip(ranks) {
        let (letters, ell) = split_term(term, equation)?;
        let named = letters.iter().filter(|&&c| c != '.').count();
        let covered = if ell {
            rank.checked_sub(named).ok_or_else(|| {
                format!("term '{term}' of '{equation}' names more axes than its input's {rank}")
            })?
        } else if named != rank {
            return Err(format!(
                "term '{term}' of '{equation}' names {named} axes, its input has {rank}"
            ));
        } else {
            0
        };
        parsed.push((letters, covered));
    }
    // Every ellipsis is aligned to the right of the longest one.
    let ellipsis_rank = parsed.iter().map(|p| p.1).max().unwrap_or(0);
    let inputs: Vec<Vec<char>> = parsed
        .iter()
        .map(|(letters, covered)| expand(letters, *covered, ellipsis_rank))
        .collect();
    let output = match rhs {
        Some(r) => {
            let (letters, ell) = split_term(r, equation)?;
            if ell {
                expand(&letters, ellipsis_rank, ellipsis_rank)
            } else {
                letters
            }
        }
        None => {
            // Implicit output: the ellipsis axes, then the letters used once, in order.
            let mut out: Vec<char> = (0..ellipsis_rank).map(ellipsis_letter).collect();
            let mut once: Vec<char> = inputs
                .iter()
                .flatten()
                .copied()
                .filter(|c| c.is_ascii_alphabetic())
                .filter(|c| inputs.iter().flatten().filter(|d| *d == c).count() == 1)
                .collect();
            once.sort_unstable();
            out.extend(once);
            out
        }
    };
    for (k, letters) in inputs.iter().chain(std::iter::once(&output)).enumerate() {
        for (i, c) in letters.iter().enumerate() {
            if letters[..i].contains(c) {
                let which = if k < inputs.len() {
                    format!("input term {k}")
                } else {
                    "the output".to_string()
                };
                return Err(format!(
                    "equation '{equation}' repeats '{c}' in {which} (a diagonal); not supported"
                ));
            }
        }
    }
    for c in &output {
        if !inputs.iter().any(|t| t.contains(c)) {
            return Err(format!(
                "output letter '{c}' of '{equation}' is in no input term"
            ));
        }
    }
    Ok(Equation { inputs, output })
}

/// The letters of one term with `...` kept as one '.' marker, and whether it had one.
fn split_term(term: &str, equation: &str) -> Result<(Vec<char>, bool), String> {
    let ell = term.matches("...").count();
    if ell > 1 {
        return Err(format!(
            "term '{term}' of '{equation}' has more than one ellipsis"
        ));
    }
    let letters: Vec<char> = term.replacen("...", ".", 1).chars().collect();
    if let Some(c) = letters
        .iter()
        .find(|&&c| c != '.' && !c.is_ascii_alphabetic())
    {
        return Err(format!("equation '{equation}' has '{c}', not a letter"));
    }
    Ok((letters, ell == 1))
}

/// Replaces the '.' marker by the last `covered` of `total` ellipsis letters.
fn expand(letters: &[char], covered: usize, total: usize) -> Vec<char> {
    let mut out = Vec::with_capacity(letters.len() + covered);
    for &c in letters {
        if c == '.' {
            out.extend((total - covered..total).map(ellipsis_letter));
        } else {
            out.push(c);
        }
    }
    out
}

/// Builds the IR nodes, naming them `{node}.{role}` with numbered roles and the last one after
/// the ONNX node.
struct Builder {
    out: Imported,
    count: usize,
}

impl Builder {
    fn add(&mut self, what: &str, op: Op, inputs: Vec<Source>) -> Source {
        self.count += 1;
        self.out.add(format!("{what}{}", self.count), op, inputs)
    }

    fn transpose(&mut self, t: Term, letters: &[char]) -> Term {
        if t.letters == letters {
            return t;
        }
        let perm: Vec<usize> = letters
            .iter()
            .filter_map(|c| t.letters.iter().position(|d| d == c))
            .collect();
        let shape = perm.iter().map(|&p| t.shape[p]).collect();
        let src = self.add(
            "transpose",
            Op::Transpose(Transpose { perm: Some(perm) }),
            vec![t.src],
        );
        Term {
            src,
            letters: letters.to_vec(),
            shape,
            constant: t.constant,
        }
    }

    fn reshape(&mut self, src: Source, from: &[usize], to: &[usize]) -> Result<Source, String> {
        if from == to {
            return Ok(src);
        }
        let dims = to.iter().map(|&d| d as i64).collect();
        let shape = Tensor::from_i64(vec![to.len()], dims).map_err(|e| e.to_string())?;
        self.count += 1;
        let role = format!("shape{}", self.count);
        Ok(self.add(
            "reshape",
            Op::Reshape(Reshape { allowzero: false }),
            vec![src, Source::Const(role, Arc::new(shape))],
        ))
    }

    /// Sums the axes of `t` whose letters are not in `keep`.
    fn sum_out(&mut self, t: Term, keep: &[char]) -> Term {
        let axes: Vec<i64> = (0..t.letters.len())
            .filter(|&i| !keep.contains(&t.letters[i]))
            .map(|i| i as i64)
            .collect();
        if axes.is_empty() {
            return t;
        }
        let (letters, shape) = t
            .letters
            .iter()
            .zip(&t.shape)
            .filter(|(c, _)| keep.contains(c))
            .map(|(&c, &d)| (c, d))
            .unzip();
        let src = self.add(
            "sum",
            Op::Reduce(Reduce {
                kind: ReduceKind::Sum,
                axes: Some(axes),
                keepdims: false,
            }),
            vec![t.src],
        );
        Term {
            src,
            letters,
            shape,
            constant: t.constant,
        }
    }

    /// Contracts `a` and `b` over their shared letters not in `keep`; the result's letters are
    /// the shared kept ones (batch), then `a`'s own, then `b`'s own.
    fn contract(&mut self, a: Term, b: Term, keep: &[char], eq: &str) -> Result<Term, String> {
        // A constant operand goes on the right, where a MatMul holds its weight.
        let (a, b) = if a.constant && !b.constant {
            (b, a)
        } else {
            (a, b)
        };
        let size = |t: &Term, c: char| t.letters.iter().position(|&d| d == c).map(|i| t.shape[i]);
        let shared: Vec<char> = a
            .letters
            .iter()
            .copied()
            .filter(|c| b.letters.contains(c))
            .collect();
        for &c in &shared {
            let (x, y) = (size(&a, c), size(&b, c));
            if x != y {
                return Err(format!(
                    "letter '{}' of '{eq}' has size {} in one operand and {} in the other \
                     (broadcasting inside Einsum is not supported)",
                    shown(c),
                    x.unwrap_or(0),
                    y.unwrap_or(0)
                ));
            }
        }
        let (batch, summed): (Vec<char>, Vec<char>) = shared.iter().partition(|c| keep.contains(c));
        let own = |t: &Term| -> Vec<char> {
            t.letters
                .iter()
                .copied()
                .filter(|c| !shared.contains(c))
                .collect()
        };
        let (a_own, b_own) = (own(&a), own(&b));
        let dims = |t: &Term, cs: &[char]| -> Vec<usize> {
            cs.iter().filter_map(|&c| size(t, c)).collect()
        };
        let batch_dims = dims(&a, &batch);
        let (a_dims, b_dims) = (dims(&a, &a_own), dims(&b, &b_own));
        let product = |d: &[usize]| d.iter().product::<usize>();
        let constant = a.constant && b.constant;
        let letters: Vec<char> = [&batch[..], &a_own, &b_own].concat();
        let shape: Vec<usize> = [&batch_dims[..], &a_dims, &b_dims].concat();
        if summed.is_empty() {
            // An outer product over the batch: a broadcast Mul, size-1 axes where the other
            // operand's own letters go.
            let a = self.transpose(a, &[&batch[..], &a_own].concat());
            let b = self.transpose(b, &[&batch[..], &b_own].concat());
            let ones = |n: usize| vec![1; n];
            let a_to = [&batch_dims[..], &a_dims, &ones(b_dims.len())].concat();
            let b_to = [&batch_dims[..], &ones(a_dims.len()), &b_dims].concat();
            let x = self.reshape(a.src, &a.shape, &a_to)?;
            let y = self.reshape(b.src, &b.shape, &b_to)?;
            let src = self.add("mul", Op::Binary(BinaryOp::Mul), vec![x, y]);
            return Ok(Term {
                src,
                letters,
                shape,
                constant,
            });
        }
        let k_dims = dims(&a, &summed);
        let a = self.transpose(a, &[&batch[..], &a_own, &summed].concat());
        let b = self.transpose(b, &[&batch[..], &summed, &b_own].concat());
        let (m, k, n) = (product(&a_dims), product(&k_dims), product(&b_dims));
        let x = self.reshape(a.src, &a.shape, &[&batch_dims[..], &[m, k]].concat())?;
        let y = self.reshape(b.src, &b.shape, &[&batch_dims[..], &[k, n]].concat())?;
        let mm = self.add("matmul", Op::MatMul, vec![x, y]);
        let src = self.reshape(mm, &[&batch_dims[..], &[m, n]].concat(), &shape)?;
        Ok(Term {
            src,
            letters,
            shape,
            constant,
        })
    }
}

/// A letter as the user wrote it (ellipsis letters as `...`).
fn shown(c: char) -> String {
    if c.is_ascii() {
        c.to_string()
    } else {
        "...".to_string()
    }
}

pub fn einsum(ctx: &NodeCtx) -> Result<Imported, String> {
    let equation = ctx
        .attrs
        .string("equation")?
        .ok_or("attribute 'equation' is required")?;
    let n = ctx.node.input.len();
    if (0..n).any(|i| !ctx.has_input(i)) {
        return Err("every input must be present".into());
    }
    let shapes = &ctx.input_shapes;
    if shapes.len() != n {
        return Err("internal: Einsum's input shapes are unknown".into());
    }
    let ranks: Vec<usize> = shapes.iter().map(Vec::len).collect();
    let eq = parse(&equation, &ranks)?;
    let mut b = Builder {
        out: Imported::new(),
        count: 0,
    };
    let mut terms: Vec<Term> = eq
        .inputs
        .iter()
        .enumerate()
        .map(|(i, letters)| Term {
            src: Source::Input(i),
            letters: letters.clone(),
            shape: shapes[i].clone(),
            constant: ctx.consts.contains_key(&ctx.node.input[i]),
        })
        .collect();
    // Letters needed after term `i`: by a later term or the output.
    let needed = |skip: &dyn Fn(usize) -> bool| -> Vec<char> {
        let mut keep = eq.output.clone();
        for (_, t) in eq.inputs.iter().enumerate().filter(|(j, _)| !skip(*j)) {
            keep.extend(t.iter().copied());
        }
        keep
    };
    // Each operand first sums the letters that no other term and not the output has.
    for (i, t) in std::mem::take(&mut terms).into_iter().enumerate() {
        terms.push(b.sum_out(t, &needed(&|j| j == i)));
    }
    let mut acc = terms.remove(0);
    for (i, t) in terms.into_iter().enumerate() {
        // Operands 0..=i+1 are now in the product; what later terms or the output need stays.
        acc = b.contract(acc, t, &needed(&|j| j <= i + 1), &equation)?;
    }
    let acc = b.sum_out(acc, &eq.output);
    let acc = b.transpose(acc, &eq.output);
    let mut out = b.out;
    match acc.src {
        Source::Node(k) => {
            out.nodes[k].role = String::new();
            out.outputs = vec![Some(k)];
        }
        src => {
            let node = out.add("", Op::Identity, vec![src]);
            out.output(0, &node);
        }
    }
    Ok(out)
}
