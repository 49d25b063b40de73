//! The admin side of the client protocol: `status` (who leads) and `dump` (what a node
//! committed), over the same JSON-lines client the workers use.

use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use sunder_wire::{Op, Status};
use sunder_workloads::{Client, Dialer, Endpoint, JsonLinesClient, Outcome};

/// Cheap to clone: clones share connections.
#[derive(Clone)]
pub struct Admin {
    client: Arc<JsonLinesClient>,
}

impl Admin {
    /// Reaching the nodes through `dialer` (e.g. from inside the netns hub).
    pub fn with_dialer(endpoints: Vec<Endpoint>, dialer: Dialer) -> Admin {
        Admin {
            client: Arc::new(JsonLinesClient::with_dialer(endpoints, dialer)),
        }
    }

    pub fn endpoints(&self) -> &[Endpoint] {
        self.client.endpoints()
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.client.endpoints().iter().position(|e| e.id == id)
    }

    /// One admin call; `Err` with the reason when the node did not answer `ok`.
    pub async fn call(&self, id: &str, op: Op, timeout: Duration) -> Result<Value, String> {
        let i = self.index(id).ok_or_else(|| format!("unknown node {id}"))?;
        match self.client.call(i, &op, timeout).await {
            Outcome::Ok(v) => Ok(v),
            Outcome::Committed(_) => Ok(Value::Null),
            Outcome::Fail { error, .. } | Outcome::Info { error } => Err(error),
        }
    }

    pub async fn status(&self, id: &str, timeout: Duration) -> Result<Status, String> {
        let v = self.call(id, Op::Status, timeout).await?;
        serde_json::from_value(v).map_err(|e| format!("bad status answer: {e}"))
    }

    /// Every node's status, asked in parallel; nodes that do not answer are absent.
    pub async fn statuses(&self, timeout: Duration) -> BTreeMap<String, Status> {
        let mut asks = tokio::task::JoinSet::new();
        for e in self.endpoints() {
            let (me, id) = (self.clone(), e.id.clone());
            asks.spawn(async move { (id.clone(), me.status(&id, timeout).await) });
        }
        let mut out = BTreeMap::new();
        while let Some(Ok((id, s))) = asks.join_next().await {
            if let Ok(s) = s {
                out.insert(id, s);
            }
        }
        out
    }

    /// The node most answering nodes name as leader (ties: the smallest id), if any.
    pub async fn leader(&self, timeout: Duration) -> Option<String> {
        leader_of(&self.statuses(timeout).await)
    }
}

/// The leader most nodes believe in, counting a node that says it leads as a vote for
/// itself.
pub fn leader_of(statuses: &BTreeMap<String, Status>) -> Option<String> {
    let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
    for s in statuses.values() {
        let claimed = s
            .leader
            .as_deref()
            .or((s.role == "leader" || s.role == "primary").then_some(s.node.as_str()));
        if let Some(l) = claimed {
            *votes.entry(l).or_default() += 1;
        }
    }
    let best = votes.values().copied().max()?;
    votes
        .into_iter()
        .find(|(_, v)| *v == best)
        .map(|(l, _)| l.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(node: &str, role: &str, leader: Option<&str>) -> (String, Status) {
        (
            node.into(),
            Status {
                node: node.into(),
                role: role.into(),
                term: 1,
                leader: leader.map(Into::into),
                commit: 0,
            },
        )
    }

    #[test]
    fn leader_is_the_most_believed() {
        let m: BTreeMap<_, _> = [
            st("n1", "follower", Some("n2")),
            st("n2", "leader", None),
            st("n3", "follower", Some("n3")),
        ]
        .into();
        assert_eq!(leader_of(&m).as_deref(), Some("n2"));
        let none: BTreeMap<_, _> = [st("n1", "follower", None)].into();
        assert_eq!(leader_of(&none), None);
    }
}
