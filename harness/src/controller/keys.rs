//! A PBFT run's keys: made from the run seed (so a replay has the same ones), written into
//! each replica's directory, and held for the run's BFT client.
//!
//! ```text
//!   nodes/<id>/secret.key        the replica's secret key, mode 0600  ─► --secret-key
//!   nodes/<id>/public-keys.json  every replica's and client's public  ─► --public-keys
//!   keys.json                    the same public keys, for the record
//!   (memory)                     client secrets ─► BftClient (one identity per worker,
//!                                                  plus one per node for final reads)
//! ```

use super::rundir::RunDir;
use anyhow::Context;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use sunder_pbft::keyfile::{self, PublicKeys};

/// The keys of one run.
pub struct RunKeys {
    seed: u64,
    members: Vec<String>,
    pub public: PublicKeys,
    clients: u64,
}

/// Where one replica's key files are.
pub struct KeyPaths {
    pub secret: PathBuf,
    pub public: PathBuf,
}

impl RunKeys {
    /// Keys for `members` and `clients` clients, from the run seed.
    pub fn new(seed: u64, members: &[String], clients: u64) -> RunKeys {
        let mut members = members.to_vec();
        members.sort(); // the order the replicas number themselves in
        RunKeys {
            seed,
            public: keyfile::public_keys(seed, &members, clients),
            members,
            clients,
        }
    }

    /// The clients' secret keys, by client id.
    pub fn client_secrets(&self) -> Vec<[u8; 32]> {
        (0..self.clients)
            .map(|c| keyfile::client_secret(self.seed, c))
            .collect()
    }

    /// The replicas' public keys, by node id.
    pub fn replica_publics(&self) -> Vec<(String, [u8; 32])> {
        self.members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let secret = keyfile::replica_secret(self.seed, i);
                (m.clone(), keyfile::public_of(&secret))
            })
            .collect()
    }

    /// Writes `keys.json` and every replica's two files; returns the paths by node id.
    pub fn write(&self, dir: &RunDir) -> anyhow::Result<Vec<(String, KeyPaths)>> {
        dir.write_json("keys.json", &self.public)?;
        let public = serde_json::to_string_pretty(&self.public).context("serialise keys")?;
        let mut paths = Vec::new();
        for (i, m) in self.members.iter().enumerate() {
            let home = dir.node_file(m);
            std::fs::create_dir_all(&home).with_context(|| format!("create {}", home.display()))?;
            let secret = home.join("secret.key");
            let text = keyfile::hex(&keyfile::replica_secret(self.seed, i)) + "\n";
            write_private(&secret, text.as_bytes())?;
            let public_path = home.join("public-keys.json");
            std::fs::write(&public_path, &public)
                .with_context(|| format!("write {}", public_path.display()))?;
            paths.push((
                m.clone(),
                KeyPaths {
                    secret,
                    public: public_path,
                },
            ));
        }
        Ok(paths)
    }
}

/// A new file readable by its owner only (created so: never world-readable, not even for
/// a moment).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_load_back_secrets_are_private_and_the_seed_replays() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::create(tmp.path(), "k").unwrap();
        let members: Vec<String> = ["n2", "n1", "n3", "n4"].map(String::from).to_vec();
        let keys = RunKeys::new(5, &members, 3);
        let paths = keys.write(&dir).unwrap();
        let mut sorted = members.clone();
        sorted.sort();
        for (id, p) in &paths {
            let mode = std::fs::metadata(&p.secret).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{id}");
            let secret = std::fs::read_to_string(&p.secret).unwrap();
            let public = std::fs::read_to_string(&p.public).unwrap();
            let (_, clients) = keyfile::load(id, &sorted, &secret, &public).unwrap();
            assert_eq!(clients.len(), 3);
        }
        let recorded: PublicKeys =
            serde_json::from_str(&std::fs::read_to_string(dir.file("keys.json")).unwrap()).unwrap();
        assert_eq!(recorded, RunKeys::new(5, &members, 3).public);
        assert_ne!(recorded, RunKeys::new(6, &members, 3).public);
        // Writing twice into one run never silently replaces a secret.
        assert!(keys.write(&dir).is_err());
    }
}
