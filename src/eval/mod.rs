//! Evaluating explanations: region perturbation and its AOPC ([`perturbation`]), with the
//! protocol's random numbers ([`rng`]).

pub mod perturbation;
pub mod rng;
