//! `sunder node pbft`: a PBFT replica as a process. The core needs more than its command
//! line: its secret key and everyone's public keys, from the two files the controller
//! wrote (`--secret-key`, `--public-keys`; formats in `sunder_pbft::keyfile`). Both are
//! read and checked before anything starts, so a missing or malformed key file stops the
//! node with an error naming the file (exit status 3, as any node that cannot start).

use std::path::Path;
use sunder_node::{NodeArgs, NodeError};
use sunder_pbft::{Pbft, keyfile};

/// Larger than any honest key file (a public-keys file holds at most
/// `keyfile::MAX_CLIENT_KEYS` keys of 64 hex digits plus JSON).
const MAX_KEY_FILE: u64 = 16 << 20;

fn read(flag: &str, path: Option<&Path>) -> Result<String, NodeError> {
    let path = path.ok_or_else(|| {
        NodeError::Config(format!(
            "pbft needs {flag} FILE (the controller makes the run's keys; see `sunder test --target pbft`)"
        ))
    })?;
    let io = |what, source| NodeError::Io {
        what,
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path)
        .map_err(|e| io("read key file", e))?
        .len();
    if len > MAX_KEY_FILE {
        return Err(NodeError::Config(format!(
            "{flag} {}: {len} bytes, more than any key file",
            path.display()
        )));
    }
    std::fs::read_to_string(path).map_err(|e| io("read key file", e))
}

/// Runs one PBFT replica with the keys its files hold.
pub fn run(args: NodeArgs) -> Result<(), NodeError> {
    let secret = read("--secret-key", args.secret_key.as_deref())?;
    let public = read("--public-keys", args.public_keys.as_deref())?;
    let members = args.members();
    let (keys, clients) = keyfile::load(&args.id, &members, &secret, &public).map_err(|e| {
        NodeError::Config(format!(
            "key files {} and {}: {e}",
            args.secret_key
                .as_deref()
                .unwrap_or(Path::new(""))
                .display(),
            args.public_keys
                .as_deref()
                .unwrap_or(Path::new(""))
                .display()
        ))
    })?;
    if clients.is_empty() {
        return Err(NodeError::Config(
            "the public keys file names no client: nobody could send a request".into(),
        ));
    }
    sunder_node::run_node_with(args, move |config, records| {
        Pbft::with_keys(config, keys.clone(), Some(clients.clone()), records)
    })
}
