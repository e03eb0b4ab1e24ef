//! The flags that choose and parameterise a method (shared by `explain` and `inspect`).

use anyhow::{Result, anyhow};
use clap::Args;
use lrpc::relevance::{Bound, Method};

#[derive(Args, Debug, Clone)]
pub struct MethodArgs {
    /// LRP composite or gradient method: epsilon, epsilon-plus, epsilon-plus-flat,
    /// epsilon-alpha2-beta1, epsilon-alpha2-beta1-flat, epsilon-gamma-box, excitation-backprop,
    /// gradient, gradient-x-input, guided-backprop, deconvnet, smoothgrad, integrated-gradients
    /// [default: epsilon-plus].
    #[arg(long)]
    pub method: Option<String>,
    /// Epsilon of the epsilon rule.
    #[arg(long)]
    epsilon: Option<f32>,
    /// Gamma of the gamma rule.
    #[arg(long)]
    gamma: Option<f32>,
    /// Lowest input value for the z-box rule: one number, or one per channel (a,b,c).
    #[arg(long, allow_hyphen_values = true)]
    low: Option<String>,
    /// Highest input value for the z-box rule: one number, or one per channel (a,b,c).
    #[arg(long, allow_hyphen_values = true)]
    high: Option<String>,
    /// Alpha of the alpha-beta rule (beta = alpha - 1).
    #[arg(long)]
    alpha: Option<f32>,
    /// Arras et al.'s bias factor for Gemm, MatMul and summed linear maps (recurrent cells):
    /// 0 lets biases absorb relevance, 1 hands what they absorbed back to the inputs.
    #[arg(long)]
    bias_factor: Option<f32>,
    /// Force a rule on nodes whose name matches a glob: PATTERN=RULE (repeatable).
    #[arg(long = "rule", value_name = "PATTERN=RULE")]
    rules: Vec<String>,
}

fn bound(text: &str, flag: &str) -> Result<Bound> {
    let values: Vec<f32> = text
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<f32>()
                .map_err(|_| anyhow!("--{flag} '{text}': '{v}' is not a number"))
        })
        .collect::<Result<_>>()?;
    Ok(match values.as_slice() {
        [one] => Bound::Scalar(*one),
        _ => Bound::PerChannel(values),
    })
}

/// The method when `--method` is not given.
pub const DEFAULT_METHOD: &str = "epsilon-plus";

impl MethodArgs {
    /// The flags given on the command line, as (flag, value): what an artifact refuses.
    pub fn given(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        let mut add = |flag, value: Option<String>| {
            if let Some(value) = value {
                v.push((flag, value));
            }
        };
        add("--method", self.method.clone());
        add("--epsilon", self.epsilon.map(|x| x.to_string()));
        add("--gamma", self.gamma.map(|x| x.to_string()));
        add("--low", self.low.clone());
        add("--high", self.high.clone());
        add("--alpha", self.alpha.map(|x| x.to_string()));
        add("--bias-factor", self.bias_factor.map(|x| x.to_string()));
        for r in &self.rules {
            add("--rule", Some(r.clone()));
        }
        v
    }

    /// The method these flags describe.
    pub fn method(&self) -> Result<Method> {
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
                return Err(anyhow!(
                    "--alpha must be at least 1 (beta = alpha - 1), got {a}"
                ));
            }
            p.alpha = a;
            p.beta = a - 1.0;
        }
        if let Some(b) = self.bias_factor {
            if !b.is_finite() {
                return Err(anyhow!("--bias-factor must be a finite number, got {b}"));
            }
            p.bias_factor = b;
        }
        if let Some(l) = &self.low {
            p.low = bound(l, "low")?;
        }
        if let Some(h) = &self.high {
            p.high = bound(h, "high")?;
        }
        for r in &self.rules {
            m.add_override(r)?;
        }
        Ok(m)
    }
}
