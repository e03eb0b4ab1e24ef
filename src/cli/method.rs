//! The flags that choose and parameterise a method (shared by `explain` and `inspect`).

use anyhow::{Result, anyhow};
use clap::Args;
use lrpc::relevance::{Bound, Method, Settings};

#[derive(Args, Debug, Clone)]
pub struct MethodArgs {
    /// LRP composite or gradient method: epsilon, epsilon-plus, epsilon-plus-flat,
    /// epsilon-alpha2-beta1, epsilon-alpha2-beta1-flat, epsilon-gamma-box, excitation-backprop, attn-lrp, attn-lrp-gamma, cp-lrp,
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
    /// Force a rule on nodes whose name matches a glob: PATTERN=RULE (repeatable); epsilon,
    /// gamma and alpha-beta may give their own parameters: gamma(0.05), alpha-beta(2,1).
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
pub const DEFAULT_METHOD: &str = lrpc::relevance::DEFAULT_METHOD;

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
        let settings = Settings {
            method: self.method.clone(),
            epsilon: self.epsilon,
            gamma: self.gamma,
            alpha: self.alpha,
            bias_factor: self.bias_factor,
            low: self.low.as_deref().map(|l| bound(l, "low")).transpose()?,
            high: self.high.as_deref().map(|h| bound(h, "high")).transpose()?,
            rules: self.rules.clone(),
        };
        Ok(settings.method()?)
    }
}
