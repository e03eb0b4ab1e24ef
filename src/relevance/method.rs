//! Methods (LRP composites and gradient methods), their parameters, and per-node rule overrides.

use super::rule::{Bound, Rule};

/// An LRP composite: which rule each layer type gets (design.md section 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Composite {
    Epsilon,
    EpsilonPlus,
    EpsilonPlusFlat,
    EpsilonAlpha2Beta1,
    EpsilonAlpha2Beta1Flat,
    EpsilonGammaBox,
    ExcitationBackprop,
    /// AttnLRP (Achtibat et al. 2024) as LXT computes it: epsilon on linear layers, the
    /// uniform rule on products (attention's matmuls included), the softmax rule, identity on
    /// pointwise functions and on the division by a normalisation's deviation, and constants
    /// (biases, LayerNorm's shift, position embeddings) absorbing their share.
    AttnLrp,
    /// AttnLRP with the gamma rule on convolutions and linear layers (LXT's ViT example: the
    /// patch embedding and every linear map), products, softmax and the rest as `AttnLrp`.
    AttnLrpGamma,
    /// CP-LRP (Ali et al. 2022): `AttnLrp` with the attention weights (a Softmax output
    /// multiplied into the values) held constant, so relevance flows only through the values.
    CpLrp,
}

/// A gradient-based method; they run through the same pass with gradient rules.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GradientMethod {
    Gradient,
    GradientXInput,
    GuidedBackprop,
    Deconvnet,
    /// Mean gradient over `samples` noisy copies (noise sd = `noise_level` * (max - min) of each
    /// sample; the last copy is noise-free, as in Zennit).
    SmoothGrad {
        samples: usize,
        noise_level: f32,
    },
    /// Zero baseline, alpha in linspace(1/n, 1, n), mean gradient times the input.
    IntegratedGradients {
        steps: usize,
    },
}

/// What to explain with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MethodKind {
    Lrp(Composite),
    Gradient(GradientMethod),
}

/// The parameters rules take (Zennit's defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub epsilon: f32,
    pub gamma: f32,
    pub low: Bound,
    pub high: Bound,
    pub alpha: f32,
    pub beta: f32,
    /// Arras et al.'s `bias_factor`: 0 lets biases absorb relevance, 1 hands it back to the
    /// inputs of each Gemm, MatMul and fused sum.
    pub bias_factor: f32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            epsilon: 1e-6,
            gamma: 0.25,
            low: Bound::Scalar(-3.0),
            high: Bound::Scalar(3.0),
            alpha: 2.0,
            beta: 1.0,
            bias_factor: 0.0,
        }
    }
}

/// A rule forced on every node whose name matches a glob pattern (`conv1*=flat`), like Zennit's
/// name maps. Later overrides win.
#[derive(Clone, Debug)]
pub struct Override {
    pub pattern: String,
    pub matcher: globset::GlobMatcher,
    pub rule: Rule,
}

/// A method with its parameters and overrides.
#[derive(Clone, Debug)]
pub struct Method {
    pub kind: MethodKind,
    pub params: Params,
    pub overrides: Vec<Override>,
}

/// Every method name `--method` accepts, in the order help texts list them.
pub const METHOD_NAMES: &[&str] = &[
    "epsilon",
    "epsilon-plus",
    "epsilon-plus-flat",
    "epsilon-alpha2-beta1",
    "epsilon-alpha2-beta1-flat",
    "epsilon-gamma-box",
    "excitation-backprop",
    "attn-lrp",
    "attn-lrp-gamma",
    "cp-lrp",
    "gradient",
    "gradient-x-input",
    "guided-backprop",
    "deconvnet",
    "smoothgrad",
    "integrated-gradients",
];

impl MethodKind {
    /// Parses a method name (see [`METHOD_NAMES`]).
    pub fn parse(name: &str) -> Result<MethodKind, String> {
        use Composite::*;
        use GradientMethod as G;
        Ok(match name {
            "epsilon" => MethodKind::Lrp(Epsilon),
            "epsilon-plus" => MethodKind::Lrp(EpsilonPlus),
            "epsilon-plus-flat" => MethodKind::Lrp(EpsilonPlusFlat),
            "epsilon-alpha2-beta1" => MethodKind::Lrp(EpsilonAlpha2Beta1),
            "epsilon-alpha2-beta1-flat" => MethodKind::Lrp(EpsilonAlpha2Beta1Flat),
            "epsilon-gamma-box" => MethodKind::Lrp(EpsilonGammaBox),
            "excitation-backprop" => MethodKind::Lrp(ExcitationBackprop),
            "attn-lrp" => MethodKind::Lrp(AttnLrp),
            "attn-lrp-gamma" => MethodKind::Lrp(AttnLrpGamma),
            "cp-lrp" => MethodKind::Lrp(CpLrp),
            "gradient" => MethodKind::Gradient(G::Gradient),
            "gradient-x-input" => MethodKind::Gradient(G::GradientXInput),
            "guided-backprop" => MethodKind::Gradient(G::GuidedBackprop),
            "deconvnet" => MethodKind::Gradient(G::Deconvnet),
            "smoothgrad" => MethodKind::Gradient(G::SmoothGrad {
                samples: 20,
                noise_level: 0.1,
            }),
            "integrated-gradients" => MethodKind::Gradient(G::IntegratedGradients { steps: 20 }),
            other => {
                return Err(format!(
                    "unknown method '{other}' (known: {})",
                    METHOD_NAMES.join(", ")
                ));
            }
        })
    }

    /// The name the method was parsed from.
    pub fn name(&self) -> &'static str {
        use Composite::*;
        use GradientMethod as G;
        match self {
            MethodKind::Lrp(Epsilon) => "epsilon",
            MethodKind::Lrp(EpsilonPlus) => "epsilon-plus",
            MethodKind::Lrp(EpsilonPlusFlat) => "epsilon-plus-flat",
            MethodKind::Lrp(EpsilonAlpha2Beta1) => "epsilon-alpha2-beta1",
            MethodKind::Lrp(EpsilonAlpha2Beta1Flat) => "epsilon-alpha2-beta1-flat",
            MethodKind::Lrp(EpsilonGammaBox) => "epsilon-gamma-box",
            MethodKind::Lrp(ExcitationBackprop) => "excitation-backprop",
            MethodKind::Lrp(AttnLrp) => "attn-lrp",
            MethodKind::Lrp(AttnLrpGamma) => "attn-lrp-gamma",
            MethodKind::Lrp(CpLrp) => "cp-lrp",
            MethodKind::Gradient(G::Gradient) => "gradient",
            MethodKind::Gradient(G::GradientXInput) => "gradient-x-input",
            MethodKind::Gradient(G::GuidedBackprop) => "guided-backprop",
            MethodKind::Gradient(G::Deconvnet) => "deconvnet",
            MethodKind::Gradient(G::SmoothGrad { .. }) => "smoothgrad",
            MethodKind::Gradient(G::IntegratedGradients { .. }) => "integrated-gradients",
        }
    }
}

impl Method {
    /// A method by name with default parameters and no overrides.
    pub fn parse(name: &str) -> crate::Result<Method> {
        Ok(Method {
            kind: MethodKind::parse(name).map_err(|reason| method_error("--method", reason))?,
            params: Params::default(),
            overrides: vec![],
        })
    }

    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// Adds an override from `PATTERN=RULE` (RULE: see [`RULE_NAMES`]), taking rule parameters
    /// from `self.params` unless the rule gives its own: `gamma(0.05)`, `epsilon(1e-3)`,
    /// `alpha-beta(2,1)`.
    pub fn add_override(&mut self, spec: &str) -> crate::Result<()> {
        self.try_add_override(spec)
            .map_err(|reason| method_error("--rule", reason))
    }

    fn try_add_override(&mut self, spec: &str) -> Result<(), String> {
        let (pattern, rule) = spec
            .rsplit_once('=')
            .ok_or_else(|| format!("rule override '{spec}' should be PATTERN=RULE"))?;
        let rule = parse_rule(rule, &self.params).map_err(|e| format!("{e} in '{spec}'"))?;
        let matcher = globset::Glob::new(pattern)
            .map_err(|e| format!("bad pattern '{pattern}' in '{spec}': {e}"))?
            .compile_matcher();
        self.overrides.push(Override {
            pattern: pattern.to_string(),
            matcher,
            rule,
        });
        Ok(())
    }

    /// Whether the method starts from logit x one-hot (LRP) rather than one-hot (gradients).
    pub fn is_lrp(&self) -> bool {
        matches!(self.kind, MethodKind::Lrp(_))
    }
}

/// Every rule name `--rule` accepts.
pub const RULE_NAMES: &[&str] = &[
    "epsilon",
    "zplus",
    "alpha-beta",
    "gamma",
    "zbox",
    "flat",
    "wsquare",
    "norm",
    "pass",
    "gradient",
    "gate",
    "uniform",
    "softmax",
    "attention-const",
];

/// A rule from its name, optionally with its parameters in parentheses (`gamma(0.05)`,
/// `epsilon(1e-3)`, `alpha-beta(2,1)`; the others take `params`).
fn parse_rule(text: &str, p: &Params) -> Result<Rule, String> {
    let (name, args) = match text.split_once('(') {
        Some((name, rest)) => {
            let inner = rest
                .strip_suffix(')')
                .ok_or_else(|| format!("rule '{text}' opens a parenthesis it does not close"))?;
            let values = inner
                .split(',')
                .map(|v| {
                    v.trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .ok_or_else(|| format!("rule '{text}': '{v}' is not a finite number"))
                })
                .collect::<Result<Vec<f32>, String>>()?;
            (name, Some(values))
        }
        None => (text, None),
    };
    let one = |default: f32| -> Result<f32, String> {
        match args.as_deref() {
            None => Ok(default),
            Some([v]) => Ok(*v),
            Some(_) => Err(format!("rule '{text}' takes one parameter")),
        }
    };
    let rule = match name {
        "epsilon" => Rule::Epsilon {
            epsilon: one(p.epsilon)?,
        },
        "gamma" => Rule::Gamma {
            gamma: one(p.gamma)?,
        },
        "alpha-beta" => match args.as_deref() {
            None => Rule::AlphaBeta {
                alpha: p.alpha,
                beta: p.beta,
            },
            Some([alpha, beta]) => Rule::AlphaBeta {
                alpha: *alpha,
                beta: *beta,
            },
            Some(_) => return Err(format!("rule '{text}' takes two parameters (alpha, beta)")),
        },
        _ if args.is_some() => {
            return Err(format!(
                "rule '{name}' takes no parameters in parentheses (epsilon, gamma and alpha-beta do)"
            ));
        }
        "zplus" => Rule::ZPlus,
        "zbox" => Rule::ZBox {
            low: p.low.clone(),
            high: p.high.clone(),
        },
        "flat" => Rule::Flat,
        "wsquare" => Rule::WSquare,
        "norm" => Rule::Norm,
        "pass" => Rule::Pass,
        "gradient" => Rule::Gradient,
        "gate" => Rule::Gate,
        "uniform" => Rule::Uniform,
        "softmax" => Rule::Softmax,
        "attention-const" => Rule::AttentionConst,
        other => {
            return Err(format!(
                "unknown rule '{other}' (known: {})",
                RULE_NAMES.join(", ")
            ));
        }
    };
    Ok(rule)
}

/// The method when none is named.
pub const DEFAULT_METHOD: &str = "epsilon-plus";

/// A method by name with its parameters as a user gives them (flags, keyword arguments): each
/// `None` keeps the method's default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    /// The method's name (`None`: [`DEFAULT_METHOD`]).
    pub method: Option<String>,
    pub epsilon: Option<f32>,
    pub gamma: Option<f32>,
    /// Alpha of the alpha-beta rule; beta is alpha - 1.
    pub alpha: Option<f32>,
    pub bias_factor: Option<f32>,
    pub low: Option<Bound>,
    pub high: Option<Bound>,
    /// Rule overrides, `PATTERN=RULE`, applied in order.
    pub rules: Vec<String>,
}

impl Settings {
    /// The method these settings describe.
    pub fn method(&self) -> crate::Result<Method> {
        let mut m = Method::parse(self.method.as_deref().unwrap_or(DEFAULT_METHOD))?;
        let p = &mut m.params;
        if let Some(e) = self.epsilon {
            p.epsilon = e;
        }
        if let Some(g) = self.gamma {
            p.gamma = g;
        }
        if let Some(a) = self.alpha {
            if a.is_nan() || a < 1.0 {
                return Err(method_error(
                    "--alpha",
                    format!("must be at least 1 (beta = alpha - 1), got {a}"),
                ));
            }
            p.alpha = a;
            p.beta = a - 1.0;
        }
        if let Some(b) = self.bias_factor {
            if !b.is_finite() {
                return Err(method_error(
                    "--bias-factor",
                    format!("must be a finite number, got {b}"),
                ));
            }
            p.bias_factor = b;
        }
        if let Some(l) = &self.low {
            p.low = l.clone();
        }
        if let Some(h) = &self.high {
            p.high = h.clone();
        }
        for r in &self.rules {
            m.add_override(r)?;
        }
        Ok(m)
    }
}

fn method_error(what: &str, reason: String) -> crate::Error {
    crate::Error::Input {
        what: what.into(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_take_their_own_parameters_or_the_methods() {
        let mut m = Method::parse("attn-lrp-gamma").unwrap();
        m.params.gamma = 0.05;
        for spec in [
            "a=gamma(0.25)",
            "b=gamma",
            "c=epsilon(1e-3)",
            "d=alpha-beta(3, 2)",
            "e=attention-const",
        ] {
            m.add_override(spec).unwrap();
        }
        let rules: Vec<&Rule> = m.overrides.iter().map(|o| &o.rule).collect();
        assert_eq!(
            rules,
            [
                &Rule::Gamma { gamma: 0.25 },
                &Rule::Gamma { gamma: 0.05 },
                &Rule::Epsilon { epsilon: 1e-3 },
                &Rule::AlphaBeta {
                    alpha: 3.0,
                    beta: 2.0
                },
                &Rule::AttentionConst,
            ]
        );
    }

    #[test]
    fn malformed_rule_parameters_are_refused() {
        let mut m = Method::parse("epsilon").unwrap();
        for (spec, says) in [
            ("a=gamma(0.25", "does not close"),
            ("a=gamma(x)", "not a finite number"),
            ("a=gamma(nan)", "not a finite number"),
            ("a=gamma(1,2)", "takes one parameter"),
            ("a=alpha-beta(2)", "two parameters"),
            ("a=flat(1)", "takes no parameters"),
            ("a=zeta", "unknown rule 'zeta'"),
        ] {
            let err = m.add_override(spec).unwrap_err().to_string();
            assert!(err.contains(says), "{spec}: {err}");
            assert!(err.contains(spec), "{spec} is named: {err}");
        }
        assert!(m.overrides.is_empty());
    }
}
