//! [`HostSpec`]: how to reach one host over SSH, validated before `ssh` ever sees it.

use crate::RemoteError;
use std::path::PathBuf;

/// What to do with a host key known_hosts does not hold yet. A key that differs from the
/// one held is refused either way: there is no option to accept a changed key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// `StrictHostKeyChecking=yes`: only hosts already in known_hosts (the default).
    #[default]
    Strict,
    /// `StrictHostKeyChecking=accept-new`: a host seen for the first time is added.
    AcceptNew,
}

/// One host: a name for logs and errors (usually the node id it carries), its address,
/// and how ssh logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// For people: errors and the command log name the host by this.
    pub name: String,
    /// Host name or address as ssh takes it.
    pub address: String,
    /// Remote user; `None`: ssh's default (the local user, or the ssh config's).
    pub user: Option<String>,
    pub port: u16,
    /// A private key file (`-i`, with `IdentitiesOnly=yes`); `None`: the agent and the
    /// user's default keys.
    pub identity: Option<PathBuf>,
    /// A known_hosts file to use instead of the user's and the system's.
    pub known_hosts: Option<PathBuf>,
    pub host_keys: HostKeyPolicy,
    /// An ssh config file (`-F`); `None`: the user's `~/.ssh/config`. Tests pass
    /// `/dev/null` so that nothing of the machine's user leaks in.
    pub config: Option<PathBuf>,
    /// The program run as `ssh`, with any arguments before ssh's own (default `["ssh"]`).
    /// Tests on this machine run it inside a network namespace
    /// (`["ip", "netns", "exec", NS, "ssh"]`).
    pub ssh_program: Vec<String>,
    /// How long a master connection stays up without a command before it ends by itself
    /// (it is closed explicitly at the end; this bounds what a killed controller leaves).
    pub persist_secs: u32,
    pub connect_timeout_secs: u32,
    /// How long one remote command may take (an upload of a large binary included) before
    /// its ssh is killed and the command counts as failed: a hung host must not hang the
    /// controller's heal or cleanup.
    pub command_timeout_secs: u64,
}

impl HostSpec {
    /// A host with the defaults: port 22, the user's keys and known_hosts, strict
    /// host-key checking.
    pub fn new(name: impl Into<String>, address: impl Into<String>) -> HostSpec {
        HostSpec {
            name: name.into(),
            address: address.into(),
            user: None,
            port: 22,
            identity: None,
            known_hosts: None,
            host_keys: HostKeyPolicy::Strict,
            config: None,
            ssh_program: vec!["ssh".into()],
            persist_secs: 600,
            connect_timeout_secs: 10,
            command_timeout_secs: 300,
        }
    }

    /// Refuses what would change ssh's meaning: a name or user starting with `-` would be
    /// read as an option, whitespace or `@` would split the destination.
    pub fn validate(&self) -> Result<(), RemoteError> {
        let word = |what: &str, v: &str| -> Result<(), RemoteError> {
            if v.is_empty()
                || v.starts_with('-')
                || v.chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '@')
            {
                return Err(RemoteError::Invalid(format!(
                    "host {}: bad {what} {v:?} (empty, starts with '-', or holds whitespace or '@')",
                    self.name
                )));
            }
            Ok(())
        };
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(RemoteError::Invalid(format!(
                "bad host name {:?} (letters, digits, '-', '_', '.')",
                self.name
            )));
        }
        word("address", &self.address)?;
        if let Some(u) = &self.user {
            word("user", u)?;
        }
        if self.port == 0 {
            return Err(RemoteError::Invalid(format!("host {}: port 0", self.name)));
        }
        if self.command_timeout_secs == 0 {
            return Err(RemoteError::Invalid(format!(
                "host {}: a command timeout of 0 s",
                self.name
            )));
        }
        if self.ssh_program.is_empty() {
            return Err(RemoteError::Invalid(format!(
                "host {}: empty ssh program",
                self.name
            )));
        }
        Ok(())
    }

    /// The known_hosts in use, for error messages.
    pub fn known_hosts_shown(&self) -> String {
        match &self.known_hosts {
            Some(p) => p.display().to_string(),
            None => "the user's and the system's".into(),
        }
    }

    /// ssh's options for this host (without `-M`/`-O`, the control path or the
    /// destination).
    pub(crate) fn options(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        let mut o = |s: String| {
            v.push("-o".into());
            v.push(s);
        };
        o("BatchMode=yes".into());
        o(format!(
            "StrictHostKeyChecking={}",
            match self.host_keys {
                HostKeyPolicy::Strict => "yes",
                HostKeyPolicy::AcceptNew => "accept-new",
            }
        ));
        o(format!("ConnectTimeout={}", self.connect_timeout_secs));
        o("ServerAliveInterval=5".into());
        o("ServerAliveCountMax=3".into());
        if let Some(k) = &self.known_hosts {
            o(format!("UserKnownHostsFile={}", k.display()));
            o("GlobalKnownHostsFile=/dev/null".into());
        }
        if let Some(i) = &self.identity {
            o("IdentitiesOnly=yes".into());
            o(format!("IdentityFile={}", i.display()));
        }
        let mut pre = Vec::new();
        if let Some(c) = &self.config {
            pre.push("-F".into());
            pre.push(c.display().to_string());
        }
        pre.push("-p".into());
        pre.push(self.port.to_string());
        if let Some(u) = &self.user {
            pre.push("-l".into());
            pre.push(u.clone());
        }
        pre.extend(v);
        pre
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_lookalikes_and_split_destinations_are_refused() {
        assert!(HostSpec::new("n1", "10.0.0.5").validate().is_ok());
        for addr in ["-oProxyCommand=x", "a b", "root@h", "", "h\n"] {
            assert!(HostSpec::new("n1", addr).validate().is_err(), "{addr:?}");
        }
        let mut h = HostSpec::new("n1", "h");
        h.user = Some("-x".into());
        assert!(h.validate().is_err());
        assert!(HostSpec::new("n/1", "h").validate().is_err());
    }

    #[test]
    fn host_keys_are_checked_strictly_unless_asked_otherwise() {
        let h = HostSpec::new("n1", "h");
        assert!(
            h.options()
                .contains(&"StrictHostKeyChecking=yes".to_string())
        );
        let mut h2 = h.clone();
        h2.host_keys = HostKeyPolicy::AcceptNew;
        h2.known_hosts = Some("/k".into());
        let o = h2.options();
        assert!(o.contains(&"StrictHostKeyChecking=accept-new".to_string()));
        assert!(o.contains(&"UserKnownHostsFile=/k".to_string()));
        assert!(o.contains(&"BatchMode=yes".to_string()));
    }
}
