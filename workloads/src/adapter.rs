//! Choosing a client adapter from configuration: a target spec's `[client]` table.
//!
//! ```text
//!  [client]                        AdapterConfig::build(endpoints, dialer)
//!  adapter = "etcd"          ─►    AnyClient::Etcd(EtcdClient)        ─► run_workers_with
//!  reads = "serializable"          AnyClient::JsonLines(JsonLinesClient)   final_phase_with
//!  adapter = "http" + [client.read] ...   AnyClient::Http(HttpKvClient)
//!  adapter = "nats"                        AnyClient::Nats(NatsClient)
//!  adapter = "zookeeper"                   AnyClient::Zookeeper(ZookeeperClient)
//! ```
//!
//! Unknown settings are errors, not silently ignored: a misspelt `reads` would otherwise
//! test the wrong thing and report it valid.

use crate::bft::BftClient;
use crate::client::{Client, Endpoint, Outcome};
use crate::config::WorkloadKind;
use crate::dial::Dialer;
use crate::etcd::{EtcdClient, EtcdConfig};
use crate::http_config::HttpConfig;
use crate::http_kv::HttpKvClient;
use crate::jsonlines::JsonLinesClient;
use crate::nats::{NatsClient, NatsConfig};
use crate::zookeeper::{ZookeeperClient, ZookeeperConfig};
use serde::{Deserialize, Deserializer};
use std::time::Duration;
use sunder_wire::Op;

/// Which adapter speaks to the target, and its settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "adapter", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AdapterConfig {
    /// sunder's own JSON-lines protocol (what the built-in targets speak). No settings.
    SunderJson {},
    /// etcd's v3 JSON gateway.
    Etcd(EtcdConfig),
    /// Any HTTP API, described operation by operation in the spec.
    Http(HttpConfig),
    /// NATS JetStream key-value (register workload only).
    Nats(NatsConfig),
    /// ZooKeeper, through the `zookeeper-client` crate.
    Zookeeper(ZookeeperConfig),
}

impl Default for AdapterConfig {
    fn default() -> Self {
        AdapterConfig::SunderJson {}
    }
}

impl AdapterConfig {
    /// The adapter's name as written in a spec.
    pub fn name(&self) -> &'static str {
        match self {
            AdapterConfig::SunderJson {} => "sunder-json",
            AdapterConfig::Etcd(_) => "etcd",
            AdapterConfig::Http(_) => "http",
            AdapterConfig::Nats(_) => "nats",
            AdapterConfig::Zookeeper(_) => "zookeeper",
        }
    }

    /// Whether the target has a cas (see [`Client::can_cas`]), for those who generate
    /// operations without a client (`sunder test --dry-run`).
    pub fn can_cas(&self) -> bool {
        match self {
            AdapterConfig::Http(h) => h.op(crate::http_config::HttpOp::Cas).is_some(),
            AdapterConfig::SunderJson {}
            | AdapterConfig::Etcd(_)
            | AdapterConfig::Nats(_)
            | AdapterConfig::Zookeeper(_) => true,
        }
    }

    /// Whether the adapter can run `kind`: the operations it lacks, if any. (A missing
    /// cas is not among them: the register workload then leaves cas out.)
    pub fn missing_for(&self, kind: WorkloadKind) -> Vec<&'static str> {
        match self {
            AdapterConfig::Http(h) => h.missing_for(kind),
            AdapterConfig::Nats(_) if kind == WorkloadKind::Set => vec!["set_add", "set_read"],
            // Only sunder's own protocol has a transfer (one atomic step of two accounts).
            AdapterConfig::Etcd(_) | AdapterConfig::Nats(_) | AdapterConfig::Zookeeper(_)
                if kind == WorkloadKind::Bank =>
            {
                vec!["transfer", "balances"]
            }
            AdapterConfig::SunderJson {}
            | AdapterConfig::Etcd(_)
            | AdapterConfig::Nats(_)
            | AdapterConfig::Zookeeper(_) => Vec::new(),
        }
    }

    /// A client for `endpoints`, connecting through `dialer`. Needs a tokio runtime.
    pub fn build(&self, endpoints: Vec<Endpoint>, dialer: Dialer) -> AnyClient {
        match self {
            AdapterConfig::SunderJson {} => {
                AnyClient::JsonLines(JsonLinesClient::with_dialer(endpoints, dialer))
            }
            AdapterConfig::Etcd(cfg) => {
                AnyClient::Etcd(EtcdClient::new(endpoints, dialer, cfg.clone()))
            }
            AdapterConfig::Http(cfg) => {
                AnyClient::Http(HttpKvClient::new(endpoints, dialer, cfg.clone()))
            }
            AdapterConfig::Nats(cfg) => {
                AnyClient::Nats(NatsClient::new(endpoints, dialer, cfg.clone()))
            }
            AdapterConfig::Zookeeper(cfg) => {
                AnyClient::Zookeeper(ZookeeperClient::new(endpoints, dialer, cfg.clone()))
            }
        }
    }
}

/// Any of the client adapters, so the controller holds one type.
#[derive(Debug)]
pub enum AnyClient {
    JsonLines(JsonLinesClient),
    Etcd(EtcdClient),
    Http(HttpKvClient),
    Nats(NatsClient),
    Zookeeper(ZookeeperClient),
    /// A BFT target's client (PBFT); built by the controller, which holds its keys.
    Bft(BftClient),
}

impl Client for AnyClient {
    fn endpoints(&self) -> &[Endpoint] {
        match self {
            AnyClient::JsonLines(c) => c.endpoints(),
            AnyClient::Etcd(c) => c.endpoints(),
            AnyClient::Http(c) => c.endpoints(),
            AnyClient::Nats(c) => c.endpoints(),
            AnyClient::Zookeeper(c) => c.endpoints(),
            AnyClient::Bft(c) => c.endpoints(),
        }
    }

    fn can_cas(&self) -> bool {
        match self {
            AnyClient::JsonLines(c) => c.can_cas(),
            AnyClient::Etcd(c) => c.can_cas(),
            AnyClient::Http(c) => c.can_cas(),
            AnyClient::Nats(c) => c.can_cas(),
            AnyClient::Zookeeper(c) => c.can_cas(),
            AnyClient::Bft(c) => c.can_cas(),
        }
    }

    async fn call(&self, node: usize, op: &Op, timeout: Duration) -> Outcome {
        match self {
            AnyClient::JsonLines(c) => c.call(node, op, timeout).await,
            AnyClient::Etcd(c) => c.call(node, op, timeout).await,
            AnyClient::Http(c) => c.call(node, op, timeout).await,
            AnyClient::Nats(c) => c.call(node, op, timeout).await,
            AnyClient::Zookeeper(c) => c.call(node, op, timeout).await,
            AnyClient::Bft(c) => c.call(node, op, timeout).await,
        }
    }
}

/// An optional duration written as humantime text (`"500ms"`, `"10s"`).
pub(crate) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    text.map(|t| {
        humantime::parse_duration(&t)
            .map_err(|e| serde::de::Error::custom(format!("bad duration {t:?}: {e}")))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::ReadMode;

    fn parse(s: &str) -> Result<AdapterConfig, serde_json::Error> {
        serde_json::from_str(s)
    }

    #[test]
    fn parses_both_adapters_with_defaults() {
        assert_eq!(
            parse(r#"{"adapter":"sunder-json"}"#).unwrap(),
            AdapterConfig::SunderJson {}
        );
        let AdapterConfig::Etcd(e) = parse(r#"{"adapter":"etcd"}"#).unwrap() else {
            panic!("not etcd");
        };
        assert_eq!(e, EtcdConfig::default());
        let AdapterConfig::Etcd(e) =
            parse(r#"{"adapter":"etcd","reads":"serializable","prefix":"/s/","timeout":"10s"}"#)
                .unwrap()
        else {
            panic!("not etcd");
        };
        assert_eq!(e.reads, ReadMode::Serializable);
        assert_eq!(e.prefix, "/s/");
        assert_eq!(e.timeout, Some(Duration::from_secs(10)));
        let z = parse(r#"{"adapter":"zookeeper","reads":"sync"}"#).unwrap();
        assert_eq!(z.name(), "zookeeper");
        let AdapterConfig::Zookeeper(z) = z else {
            panic!("not zookeeper");
        };
        assert_eq!(z.reads, crate::zookeeper::ZkReads::Sync);
        assert_eq!(z.prefix, "/sunder");
    }

    #[test]
    fn the_http_adapter_parses_and_declares_what_it_lacks() {
        let a = parse(
            r#"{"adapter":"http","read":{"method":"GET","path":"/{key}","ok":200,"value":"body"},
                "write":{"method":"PUT","path":"/{key}","body":"{value}","ok":204}}"#,
        )
        .unwrap();
        assert_eq!(a.name(), "http");
        assert!(!a.can_cas());
        assert!(a.missing_for(WorkloadKind::Register).is_empty());
        assert_eq!(
            a.missing_for(WorkloadKind::Set),
            vec!["set_add", "set_read"]
        );
        assert_eq!(
            a.missing_for(WorkloadKind::Bank),
            vec!["transfer", "balances"]
        );
        assert!(
            AdapterConfig::default()
                .missing_for(WorkloadKind::Bank)
                .is_empty()
        );
        let e = parse(r#"{"adapter":"http","read":{"method":"GET","path":"/{key}","ok":200,"value":"body","absnet":404}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("read.absnet"), "{e}");
        assert!(AdapterConfig::default().can_cas());
    }

    #[test]
    fn the_nats_adapter_parses_and_has_no_set_workload() {
        let a = parse(r#"{"adapter":"nats","reads":"direct","replicas":3}"#).unwrap();
        assert_eq!(a.name(), "nats");
        assert!(a.can_cas());
        assert!(a.missing_for(WorkloadKind::Register).is_empty());
        assert_eq!(
            a.missing_for(WorkloadKind::Set),
            vec!["set_add", "set_read"]
        );
    }

    #[test]
    fn unknown_settings_and_values_are_errors() {
        for bad in [
            r#"{"adapter":"etcd","read":"serializable"}"#,
            r#"{"adapter":"etcd","reads":"stale"}"#,
            r#"{"adapter":"etcd","timeout":"soon"}"#,
            r#"{"adapter":"sunder-json","reads":"serializable"}"#,
            r#"{"adapter":"consul"}"#,
            r#"{"adapter":"nats","reads":"linearizable"}"#,
            r#"{"adapter":"zookeeper","reads":"linearizable"}"#,
            r#"{"reads":"serializable"}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} parsed");
        }
    }
}
