//! The one error type of this crate. Every variant that concerns a host names it.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum RemoteError {
    /// The host's key is not the one known_hosts holds, or known_hosts holds none for it.
    /// Never bypassed: fix known_hosts (or pass the right file) and run again.
    #[error(
        "{host}: host key verification failed (strict host-key checking is on; known_hosts: {known_hosts}): {detail}"
    )]
    HostKey {
        host: String,
        known_hosts: String,
        detail: String,
    },
    /// ssh could not reach or log in to the host.
    #[error("{host}: cannot connect over ssh: {detail}")]
    Connect { host: String, detail: String },
    /// A remote command ran and failed.
    #[error("{host}: `{command}` failed ({status}): {stderr}")]
    Command {
        host: String,
        command: String,
        status: String,
        stderr: String,
    },
    /// The local `ssh` (or `tar`) could not be started.
    #[error("{host}: cannot start `{program}`: {source}")]
    Spawn {
        host: String,
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// A remote command did not finish within the host's command timeout; its local ssh
    /// was killed (what it started on the host may still run: `clean` finds it).
    #[error("{host}: `{command}` did not finish within {secs} s")]
    Timeout {
        host: String,
        command: String,
        secs: u64,
    },
    /// What the host sent back was larger than this crate accepts.
    #[error("{host}: {what} is larger than {limit} bytes")]
    TooLarge {
        host: String,
        what: String,
        limit: u64,
    },
    /// What the host sent back does not parse.
    #[error("{host}: unexpected answer to {what}: {detail}")]
    Answer {
        host: String,
        what: String,
        detail: String,
    },
    /// Bad input from the caller (a run id, a path, an environment name, ...), refused
    /// before anything reaches a host.
    #[error("{0}")]
    Invalid(String),
    /// A local file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl RemoteError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> RemoteError {
        let context = context.into();
        move |source| RemoteError::Io { context, source }
    }
}
