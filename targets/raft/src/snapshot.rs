//! Log compaction (§7): snapshot every `snapshot_every` applied entries, and
//! InstallSnapshot for followers that need entries the leader no longer has.
//!
//! After a compaction the durable records are `[Snapshot, HardState, Entries(rest), Commit]`.

use sunder_core::NodeId;

use crate::core::{Out, Raft};
use crate::msg::{Msg, Snapshot};
use crate::record::Record;
use crate::role::RoleState;

impl Raft {
    fn compaction(&self) -> Vec<Record> {
        let snap = self.snapshot.clone().expect("a snapshot to compact to");
        let rest = self.log.entries().to_vec();
        let mut records = vec![Record::Snapshot(snap), self.hard_state()];
        if !rest.is_empty() {
            records.push(Record::Entries(rest));
        }
        records.push(Record::Commit(self.commit));
        records
    }

    pub(crate) fn maybe_compact(&mut self, out: &mut Out) {
        let every = self.s.snapshot_every;
        if every == 0 || self.applied < self.log.base_index() + every {
            return;
        }
        let index = self.applied;
        let term = self.log.term_at(index).expect("applied entry in the log");
        self.snapshot = Some(Snapshot {
            index,
            term,
            state: self.kv.clone(),
            prefix: self.prefix.clone(),
        });
        self.log.compact_to(index);
        out.compact = Some(self.compaction());
    }

    pub(crate) fn send_snapshot(&mut self, peer: &NodeId, out: &mut Out) {
        let ticks = self.ticks;
        let resend_after = self.s.election_ticks;
        let RoleState::Leader(l) = &mut self.role else {
            unreachable!("snapshots are sent only while leading");
        };
        let seq = l.seq;
        let p = l.progress.get_mut(peer).expect("peer progress");
        if p.snapshot_sent.is_some_and(|t| ticks < t + resend_after) {
            return;
        }
        p.snapshot_sent = Some(ticks);
        let snapshot = self
            .snapshot
            .clone()
            .expect("log compacted, so a snapshot exists");
        out.send.push((
            peer.clone(),
            Msg::InstallSnapshot {
                term: self.term,
                snapshot,
                seq,
            },
        ));
    }

    pub(crate) fn on_install_snapshot(
        &mut self,
        from: NodeId,
        snap: Snapshot,
        seq: u64,
        out: &mut Out,
    ) {
        let index = snap.index;
        if index > self.commit {
            if self.log.term_at(index) == Some(snap.term) {
                self.log.compact_to(index);
            } else {
                self.log.reset_to(index, snap.term);
            }
            self.kv = snap.state.clone();
            self.prefix = snap.prefix.clone();
            self.commit = index;
            self.applied = index;
            self.snapshot = Some(snap);
            self.persist_from = None;
            out.compact = Some(self.compaction());
        }
        let resp = Msg::SnapshotResp {
            term: self.term,
            index: self.commit,
            seq,
        };
        out.send.push((from, resp));
    }

    pub(crate) fn on_snapshot_resp(&mut self, from: &NodeId, index: u64, seq: u64) {
        let RoleState::Leader(l) = &mut self.role else {
            return;
        };
        let Some(p) = l.progress.get_mut(from) else {
            return;
        };
        p.active = true;
        p.acked_seq = p.acked_seq.max(seq);
        p.snapshot_sent = None;
        p.ack(index);
    }
}
