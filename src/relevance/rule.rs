//! The local rules: how relevance (or gradient) at a node's output becomes relevance at its
//! inputs. Formulas follow Zennit (docs/rules.md spells them out); z is the layer's forward output,
//! s(z) = z + eps * sgn0(z) with sgn0(0) = +1, x+/x- and w+/w- are clamped parts.

/// A box bound for the z^B rule: one value, or one value per input channel.
#[derive(Clone, Debug, PartialEq)]
pub enum Bound {
    Scalar(f32),
    PerChannel(Vec<f32>),
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bound::Scalar(v) => write!(f, "{v}"),
            Bound::PerChannel(v) => {
                let items: Vec<String> = v.iter().map(|x| x.to_string()).collect();
                write!(f, "[{}]", items.join(","))
            }
        }
    }
}

/// One local rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// R_i = x_i sum_j w_ij R_j / s(z_j).
    Epsilon { epsilon: f32 },
    /// R_i = sum_j (x+_i w+_ij + x-_i w-_ij) R_j / s(sum_i(x+ w+ + x- w-) + b+_j).
    ZPlus,
    /// alpha (x+w+ + x-w-) R / s(p) - beta (x+w- + x-w+) R / s(n), with
    /// p = sum(x+w+ + x-w-) + b+ and n = sum(x+w- + x-w+) + b-.
    AlphaBeta { alpha: f32, beta: f32 },
    /// With w^{g+} = w + g w+ and w^{g-} = w + g w-: where z_j > 0,
    /// (x+ w^{g+} + x- w^{g-}) R_j / s(sum x+ w^{g+} + x- w^{g-} + b_j + g b+_j); where z_j < 0 the
    /// mirror (x+ w^{g-} + x- w^{g+}, b_j + g b-_j); z_j = 0 passes nothing.
    Gamma { gamma: f32 },
    /// R_i = (x_i w_ij - l_i w+_ij - h_i w-_ij) R_j / s(sum_i(x w - l w+ - h w-)); biases cancel.
    ZBox { low: Bound, high: Bound },
    /// R_i = sum_{j: i in fan-in(j)} R_j / s(n_j), n_j the fan-in count (padding excluded).
    Flat,
    /// R_i = sum_j w_ij^2 R_j / s(sum_i w_ij^2 + b_j^2).
    WSquare,
    /// R_i = x_i (dz/dx_i) R / s(z): Add/Sum of computed tensors, average pools.
    Norm,
    /// R_in = R_out: activations, LRN, BatchNorm that could not be folded.
    Pass,
    /// The ordinary derivative: routing for max pools and data movement, f'(x) for activations,
    /// W^T for linear layers (gradient methods), scaling for element-wise ops with a constant.
    Gradient,
    /// ReLU in guided backprop: pass g where x > 0 and g > 0.
    GuidedBackprop,
    /// ReLU in DeconvNet: max(g, 0).
    Deconvnet,
    /// A gate times a signal (SiLU, squeeze-excite, LSTM gates): all relevance to the signal,
    /// none to the gate (Arras et al.'s signal-take-all).
    Gate,
    /// Any other product of two computed tensors: half the relevance to each operand (for a
    /// MatMul, AttnLRP's epsilon rule on the sum of products, then half to each factor).
    Uniform,
    /// A product of the attention weights (a Softmax output) and the values, the weights held
    /// constant (CP-LRP, Ali et al. 2022): the epsilon rule to the values, nothing to the
    /// weights, R_v = v (A^T (R / s(z))).
    AttentionConst,
    /// Softmax inside the graph (AttnLRP, Proposition 3.1): R_x = x (R - s sum R), the softmax
    /// linearised at its input with the bias-like term absorbed.
    Softmax,
}

/// The stabiliser of every rule but Epsilon (Zennit's `stabilizer` default).
pub const STABILIZER: f32 = 1e-6;

impl Rule {
    /// The rule's name as `--rule` and `inspect --method` spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Rule::Epsilon { .. } => "epsilon",
            Rule::ZPlus => "zplus",
            Rule::AlphaBeta { .. } => "alpha-beta",
            Rule::Gamma { .. } => "gamma",
            Rule::ZBox { .. } => "zbox",
            Rule::Flat => "flat",
            Rule::WSquare => "wsquare",
            Rule::Norm => "norm",
            Rule::Pass => "pass",
            Rule::Gradient => "gradient",
            Rule::GuidedBackprop => "guided-backprop",
            Rule::Deconvnet => "deconvnet",
            Rule::Gate => "gate",
            Rule::Uniform => "uniform",
            Rule::Softmax => "softmax",
            Rule::AttentionConst => "attention-const",
        }
    }

    /// Whether the rule needs a linear layer (Conv, Gemm, MatMul with a constant weight).
    pub fn needs_linear(&self) -> bool {
        matches!(
            self,
            Rule::Epsilon { .. }
                | Rule::ZPlus
                | Rule::AlphaBeta { .. }
                | Rule::Gamma { .. }
                | Rule::ZBox { .. }
                | Rule::Flat
                | Rule::WSquare
        )
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::Epsilon { epsilon } => write!(f, "epsilon({epsilon:e})"),
            Rule::AlphaBeta { alpha, beta } => write!(f, "alpha-beta({alpha},{beta})"),
            Rule::Gamma { gamma } => write!(f, "gamma({gamma})"),
            Rule::ZBox { low, high } => write!(f, "zbox({low},{high})"),
            other => f.write_str(other.name()),
        }
    }
}
