//! [`RemoteClocks`]: clock faults on remote nodes through libfaketime's control file on
//! each host (the node was started with [`sunder_nemesis::clock::faketime_env`] naming
//! that file). A bump rewrites the file atomically; a strobe is a small loop started
//! detached on the host (a flip every few milliseconds cannot wait for a round trip each),
//! stopped by killing its group at reset.

use crate::{Host, Launch, RemoteError, RunLayout, Signal};
use std::collections::BTreeMap;
use std::sync::Arc;
use sunder_nemesis::clock::offset_text;
use sunder_nemesis::{ClockFault, Clocks, NemesisError, NodeId, Outcome};

/// Writes the offset `$2` into `$1` atomically.
const OFFSET_SCRIPT: &str = r#"printf '%s\n' "$2" > "$1.part" && mv -f -- "$1.part" "$1""#;

/// Flips `$1` between `$3` and `$2` every `$4` seconds, `$5` times, then leaves `$2`.
const STROBE_SCRIPT: &str = r#"f=$1; a=$2; b=$3; p=$4; n=$5; i=0
put() { printf '%s\n' "$1" > "$f.part" && mv -f -- "$f.part" "$f"; }
while [ "$i" -lt "$n" ]; do put "$b"; sleep "$p"; put "$a"; sleep "$p"; i=$((i+1)); done
put "$a""#;

#[derive(Debug)]
struct ClockNode {
    host: Arc<Host>,
    file: String,
    /// The strobe loop running for this node, if any.
    strobe: Option<u32>,
}

#[derive(Debug)]
pub struct RemoteClocks {
    layout: RunLayout,
    nodes: BTreeMap<NodeId, ClockNode>,
}

impl RemoteClocks {
    /// Each node's control file is [`RunLayout::faketime_file`]; call
    /// [`RemoteClocks::init`] before starting the nodes so that the file holds `+0`.
    pub fn new(layout: RunLayout, nodes: BTreeMap<NodeId, Arc<Host>>) -> RemoteClocks {
        let nodes = nodes
            .into_iter()
            .map(|(id, host)| {
                let file = layout.faketime_file(&id);
                (
                    id,
                    ClockNode {
                        host,
                        file,
                        strobe: None,
                    },
                )
            })
            .collect();
        RemoteClocks { layout, nodes }
    }

    /// The control file of a node, for its `FAKETIME_TIMESTAMP_FILE`.
    pub fn file(&self, node: &str) -> Option<&str> {
        self.nodes.get(node).map(|n| n.file.as_str())
    }

    /// Writes `+0` to every node's control file (the run directory is made if need be).
    pub fn init(&self) -> Result<(), RemoteError> {
        for n in self.nodes.values() {
            n.host.write_file(&n.file, b"+0\n", 0o644)?;
        }
        Ok(())
    }

    fn check(&self, nodes: impl IntoIterator<Item = NodeId>) -> Result<Vec<NodeId>, NemesisError> {
        let v: Vec<NodeId> = nodes.into_iter().collect();
        match v.iter().find(|n| !self.nodes.contains_key(*n)) {
            Some(n) => Err(NemesisError::UnknownNode(n.clone())),
            None => Ok(v),
        }
    }

    fn write(&self, id: &str, ms: i64) -> Result<(), RemoteError> {
        let n = &self.nodes[id];
        let offset = offset_text(ms);
        n.host
            .run(&["sh", "-c", OFFSET_SCRIPT, "sh", &n.file, &offset])
            .map(|_| ())
    }

    fn stop_strobe(&mut self, id: &str) -> Result<(), RemoteError> {
        let n = self.nodes.get_mut(id).expect("checked");
        if let Some(pid) = n.strobe {
            if !n
                .host
                .signal_and_wait_gone(pid, Some(Signal::Kill), crate::procs::KILL_WAIT)?
            {
                return Err(RemoteError::Invalid(format!(
                    "{id}: the clock strobe (pid {pid}) on {} would not stop",
                    n.host.name()
                )));
            }
            n.strobe = None;
        }
        Ok(())
    }

    fn start_strobe(
        &mut self,
        id: &str,
        pair: [i64; 2],
        period_ms: u64,
        duration_ms: u64,
    ) -> Result<(), RemoteError> {
        self.stop_strobe(id)?;
        let n = &self.nodes[id];
        let period = format!("{}.{:03}", period_ms / 1000, period_ms % 1000);
        let flips = duration_ms / (2 * period_ms.max(1));
        let argv = vec![
            "sh".to_string(),
            "-c".into(),
            STROBE_SCRIPT.into(),
            "sh".into(),
            n.file.clone(),
            offset_text(pair[0]),
            offset_text(pair[1]),
            period,
            flips.to_string(),
        ];
        let launch = Launch::in_run(&self.layout, &format!("clock-{id}"), argv);
        let pid = n.host.start(&self.layout, &launch)?;
        self.nodes.get_mut(id).expect("checked").strobe = Some(pid);
        Ok(())
    }
}

impl Clocks for RemoteClocks {
    fn apply(&mut self, fault: &ClockFault) -> Result<Outcome, NemesisError> {
        let nodes = self.check(fault.nodes())?;
        Ok(match fault {
            ClockFault::Bump(m) => Outcome::each(&nodes, |id| {
                self.stop_strobe(id)?;
                self.write(id, m[id])
            }),
            ClockFault::Strobe {
                offsets,
                period_ms,
                duration_ms,
            } => Outcome::each(&nodes, |id| {
                self.start_strobe(id, offsets[id], *period_ms, *duration_ms)
            }),
            ClockFault::Reset(_) => Outcome::each(&nodes, |id| {
                self.stop_strobe(id)?;
                self.write(id, 0)
            }),
        })
    }

    fn reset(&mut self, nodes: &[NodeId]) -> Result<Outcome, NemesisError> {
        let nodes = self.check(nodes.iter().cloned())?;
        Ok(Outcome::each(&nodes, |id| {
            self.stop_strobe(id)?;
            self.write(id, 0)
        }))
    }
}
