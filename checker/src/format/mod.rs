//! History formats: native JSON lines, Jepsen EDN, Porcupine corpus logs (being built).

pub mod error;
pub mod porcupine;

pub use error::FormatError;
