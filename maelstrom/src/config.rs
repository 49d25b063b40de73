//! What a Maelstrom run is asked to do, validated before any process starts.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A bad flag value or combination, said so a person can fix the command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn bad(s: impl Into<String>) -> ConfigError {
    ConfigError(s.into())
}

/// The workloads this version runs, with Maelstrom's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    Echo,
    UniqueIds,
    Broadcast,
    GCounter,
    LinKv,
    GSet,
    PnCounter,
    Kafka,
}

impl Workload {
    pub const ALL: [(&'static str, Workload); 8] = [
        ("echo", Workload::Echo),
        ("unique-ids", Workload::UniqueIds),
        ("broadcast", Workload::Broadcast),
        ("g-set", Workload::GSet),
        ("g-counter", Workload::GCounter),
        ("pn-counter", Workload::PnCounter),
        ("lin-kv", Workload::LinKv),
        ("kafka", Workload::Kafka),
    ];

    pub fn name(self) -> &'static str {
        Workload::ALL
            .iter()
            .find(|(_, w)| *w == self)
            .map(|(n, _)| *n)
            .expect("every workload is listed")
    }

    /// Workloads whose checker needs a read of every node after the faults are healed
    /// (kafka's is a series of polls from offset 0, `final-poll`).
    pub fn has_final_reads(self) -> bool {
        matches!(
            self,
            Workload::Broadcast
                | Workload::GCounter
                | Workload::GSet
                | Workload::PnCounter
                | Workload::Kafka
        )
    }

    /// Workloads over `--key-count` keys.
    pub fn has_keys(self) -> bool {
        matches!(self, Workload::LinKv | Workload::Kafka)
    }
}

impl FromStr for Workload {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Workload::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, w)| *w)
            .ok_or_else(|| {
                let names: Vec<_> = Workload::ALL.iter().map(|(n, _)| *n).collect();
                bad(format!(
                    "unknown Maelstrom workload `{s}`; this version runs: {} (the transactional \
                     ones are not done yet)",
                    names.join(", ")
                ))
            })
    }
}

/// How long a message spends in the network.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "dist", rename_all = "lowercase")]
pub enum Latency {
    Constant { ms: f64 },
    Uniform { min_ms: f64, max_ms: f64 },
    Exponential { mean_ms: f64 },
}

impl FromStr for Latency {
    type Err = ConfigError;
    /// `5` (ms, constant, as Maelstrom's `--latency` number), `constant:5ms`,
    /// `uniform:1ms..10ms`, `exponential:5ms`.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let ms = |t: &str| -> Result<f64, ConfigError> {
            let t = t.trim();
            let v = match t.parse::<f64>() {
                Ok(v) => v,
                Err(_) => {
                    humantime::parse_duration(t)
                        .map_err(|e| bad(format!("--latency: `{t}`: {e}")))?
                        .as_secs_f64()
                        * 1e3
                }
            };
            if !(v.is_finite() && (0.0..=60_000.0).contains(&v)) {
                return Err(bad(format!("--latency: `{t}` must be between 0 and 60 s")));
            }
            Ok(v)
        };
        let l = match s.split_once(':') {
            None => Latency::Constant { ms: ms(s)? },
            Some(("constant", v)) => Latency::Constant { ms: ms(v)? },
            Some(("exponential", v)) => Latency::Exponential { mean_ms: ms(v)? },
            Some(("uniform", v)) => {
                let (a, b) = v
                    .split_once("..")
                    .ok_or_else(|| bad("--latency uniform:MIN..MAX, e.g. uniform:1ms..10ms"))?;
                let (min_ms, max_ms) = (ms(a)?, ms(b)?);
                if min_ms > max_ms {
                    return Err(bad("--latency uniform: MIN is above MAX"));
                }
                Latency::Uniform { min_ms, max_ms }
            }
            Some((d, _)) => {
                return Err(bad(format!(
                    "--latency: unknown distribution `{d}` (constant, uniform, exponential)"
                )));
            }
        };
        Ok(l)
    }
}

/// The neighbours each node is told of in a broadcast run's `topology` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topology {
    Grid,
    Line,
    Total,
    Tree2,
    Tree3,
    Tree4,
}

impl FromStr for Topology {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Ok(match s {
            "grid" => Topology::Grid,
            "line" => Topology::Line,
            "total" => Topology::Total,
            "tree2" => Topology::Tree2,
            "tree3" => Topology::Tree3,
            "tree4" => Topology::Tree4,
            _ => {
                return Err(bad(format!(
                    "unknown --topology `{s}` (grid, line, total, tree2, tree3, tree4)"
                )));
            }
        })
    }
}

impl Topology {
    /// Every node's neighbours, symmetric, as Maelstrom builds them.
    pub fn neighbours(self, ids: &[String]) -> BTreeMap<String, Vec<String>> {
        let n = ids.len();
        let mut out: BTreeMap<String, Vec<String>> =
            ids.iter().map(|i| (i.clone(), Vec::new())).collect();
        let mut link = |a: usize, b: usize| {
            if a != b {
                for (x, y) in [(a, b), (b, a)] {
                    let v = out.get_mut(&ids[x]).expect("known id");
                    if !v.contains(&ids[y]) {
                        v.push(ids[y].clone());
                    }
                }
            }
        };
        match self {
            Topology::Total => (0..n).for_each(|a| (0..n).for_each(|b| link(a, b))),
            Topology::Line => (1..n).for_each(|i| link(i - 1, i)),
            Topology::Grid => {
                let side = (1..=n).find(|s| s * s >= n).unwrap_or(1);
                for i in 0..n {
                    if (i + 1) % side != 0 && i + 1 < n {
                        link(i, i + 1);
                    }
                    if i + side < n {
                        link(i, i + side);
                    }
                }
            }
            Topology::Tree2 | Topology::Tree3 | Topology::Tree4 => {
                let k = match self {
                    Topology::Tree2 => 2,
                    Topology::Tree3 => 3,
                    _ => 4,
                };
                (1..n).for_each(|i| link(i, (i - 1) / k));
            }
        }
        out
    }
}

/// Faults the nemesis mixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    Partition,
    Kill,
    Pause,
    /// libfaketime: the nodes' wall clocks bumped or strobed (programs that read the
    /// clock through libc).
    Clock,
}

/// `partition,kill,pause` or `none`.
pub fn parse_nemesis(s: &str) -> Result<Vec<FaultKind>, ConfigError> {
    if s == "none" || s.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for part in s.split(',') {
        let k = match part.trim() {
            "partition" => FaultKind::Partition,
            "kill" => FaultKind::Kill,
            "pause" => FaultKind::Pause,
            "clock" => FaultKind::Clock,
            other => {
                return Err(bad(format!(
                    "--nemesis `{other}` is not available with --maelstrom (partition, kill, \
                     pause, clock, or none; use --loss for random message loss)"
                )));
            }
        };
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out.sort();
    Ok(out)
}

mod dur {
    use serde::Serializer;
    use std::time::Duration;
    pub fn ser<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

/// A validated run.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// The node program and its arguments.
    pub binary: PathBuf,
    pub args: Vec<String>,
    pub workload: Workload,
    pub nodes: usize,
    /// Clients c1..cK, each with one operation in flight.
    pub concurrency: usize,
    /// Operations per second over all clients; 0 = as fast as they complete.
    pub rate: f64,
    #[serde(serialize_with = "dur::ser")]
    pub time_limit: Duration,
    pub seed: u64,
    pub latency: Latency,
    /// Probability that a message between two nodes is lost / delivered twice.
    pub loss: f64,
    pub duplicate: f64,
    /// Probability that a message between two nodes is held back 10 to 100 ms, so that
    /// later ones overtake it.
    pub reorder: f64,
    pub nemesis: Vec<FaultKind>,
    #[serde(serialize_with = "dur::ser")]
    pub nemesis_interval: Duration,
    pub topology: Topology,
    /// lin-kv and kafka keys.
    pub key_count: usize,
    #[serde(serialize_with = "dur::ser")]
    pub op_timeout: Duration,
    #[serde(serialize_with = "dur::ser")]
    pub init_timeout: Duration,
    /// Quiet time after the heal before the final reads.
    #[serde(serialize_with = "dur::ser")]
    pub recovery: Duration,
}

impl Config {
    /// A configuration with Maelstrom's defaults for everything but the program and workload.
    pub fn new(binary: PathBuf, args: Vec<String>, workload: Workload, seed: u64) -> Config {
        Config {
            binary,
            args,
            workload,
            nodes: 3,
            concurrency: 5,
            rate: 100.0,
            time_limit: Duration::from_secs(10),
            seed,
            latency: Latency::Constant { ms: 0.0 },
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            nemesis: Vec::new(),
            nemesis_interval: Duration::from_secs(2),
            topology: Topology::Grid,
            key_count: 5,
            op_timeout: Duration::from_secs(1),
            init_timeout: Duration::from_secs(10),
            recovery: Duration::from_secs(3),
        }
    }

    /// Checks what cannot be checked while parsing one flag.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=100).contains(&self.nodes) {
            return Err(bad("--nodes must be between 1 and 100"));
        }
        if !(1..=1000).contains(&self.concurrency) {
            return Err(bad("--concurrency must be between 1 and 1000"));
        }
        if !(self.rate.is_finite() && self.rate >= 0.0) {
            return Err(bad("--rate must be a non-negative number"));
        }
        for (name, p) in [
            ("--loss", self.loss),
            ("--duplicate", self.duplicate),
            ("--reorder", self.reorder),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(bad(format!("{name} is a probability between 0 and 1")));
            }
        }
        if self.key_count == 0 {
            return Err(bad("--key-count must be at least 1"));
        }
        for (name, d) in [
            ("--op-timeout", self.op_timeout),
            ("--init-timeout", self.init_timeout),
            ("--nemesis-interval", self.nemesis_interval),
        ] {
            if d.is_zero() {
                return Err(bad(format!("{name} must be above zero")));
            }
        }
        if self.binary.as_os_str().is_empty() {
            return Err(bad("--maelstrom needs the node program's path"));
        }
        Ok(())
    }

    pub fn node_ids(&self) -> Vec<String> {
        (1..=self.nodes).map(|i| format!("n{i}")).collect()
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_specs_parse_and_bad_ones_are_refused() {
        assert_eq!("5".parse(), Ok(Latency::Constant { ms: 5.0 }));
        assert_eq!(
            "uniform:1ms..10ms".parse(),
            Ok(Latency::Uniform {
                min_ms: 1.0,
                max_ms: 10.0
            })
        );
        assert_eq!(
            "exponential:2ms".parse(),
            Ok(Latency::Exponential { mean_ms: 2.0 })
        );
        for b in ["gauss:3", "uniform:9..1", "-1", "uniform:3", "abc"] {
            assert!(b.parse::<Latency>().is_err(), "{b}");
        }
    }

    #[test]
    fn topologies_are_symmetric_and_connected() {
        let ids: Vec<String> = (1..=7).map(|i| format!("n{i}")).collect();
        for t in ["grid", "line", "total", "tree2", "tree3", "tree4"] {
            let top = t.parse::<Topology>().unwrap().neighbours(&ids);
            for (a, ns) in &top {
                for b in ns {
                    assert!(top[b].contains(a), "{t}: {a}-{b} one way");
                }
            }
            // Every node reachable from n1.
            let mut seen = vec!["n1".to_string()];
            let mut i = 0;
            while i < seen.len() {
                for b in &top[&seen[i]] {
                    if !seen.contains(b) {
                        seen.push(b.clone());
                    }
                }
                i += 1;
            }
            assert_eq!(seen.len(), 7, "{t} not connected");
        }
        assert_eq!(Topology::Grid.neighbours(&ids)["n1"], ["n2", "n4"]);
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!("txn-list-append".parse::<Workload>().is_err());
        assert_eq!("kafka".parse::<Workload>(), Ok(Workload::Kafka));
        assert!(parse_nemesis("partition,loss").is_err());
        assert_eq!(parse_nemesis("clock").unwrap(), [FaultKind::Clock]);
        assert_eq!(
            parse_nemesis("pause,partition").unwrap(),
            [FaultKind::Partition, FaultKind::Pause]
        );
        assert!("star".parse::<Topology>().is_err());
    }
}
