//! Reading and writing the data users hand to lrpc and get back.

pub mod image;
pub mod npy;
