//! Errors of every history reader: each names the file and, where there is one, the line.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// A line (or EDN form starting on that line) could not be read.
    #[error("{}:{line}: {message}", file.display())]
    Parse {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The content matches no known format (and none was forced).
    #[error("{}: cannot tell the history format: {why}", file.display())]
    UnknownFormat { file: PathBuf, why: String },
}

impl FormatError {
    pub fn parse(file: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        FormatError::Parse {
            file: file.into(),
            line,
            message: message.into(),
        }
    }
}
