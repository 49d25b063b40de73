//! Linearizability checking.

pub mod report;

pub use report::*;
