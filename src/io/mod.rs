//! Reading and writing the data users hand to lrpc and get back.

pub mod atomic;
pub mod image;
pub mod npy;

pub use atomic::write_atomically;
