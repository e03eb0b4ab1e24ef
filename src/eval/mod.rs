//! Evaluating explanations: region perturbation and its AOPC ([`perturbation`]), with the
//! protocol's random numbers ([`rng`]); relevance pooled over boxes and labelled regions
//! ([`regions`]).

pub mod data;
pub mod perturbation;
pub mod plot;
pub mod protocol;
pub mod regions;
pub mod rng;
