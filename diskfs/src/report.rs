//! [`Pending`] and [`Loss`]: what the undo log holds, and what a fault dropped.

use std::path::PathBuf;

/// What fsync has not yet made durable (see [`crate::Mount::pending`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending {
    /// Undischarged entries of the undo log.
    pub ops: u64,
    /// Of them, writes and truncations (discharged by fsync of their file).
    pub data_ops: u64,
    /// Of them, namespace changes (discharged by fsync of their directory, or under
    /// [`crate::Metadata::Journal`] by any durability point).
    pub metadata_ops: u64,
    /// Bytes written by the undischarged writes (what a fault would drop).
    pub unsynced_bytes: u64,
    /// Bytes of pre-images the log holds to undo them (what counts against the bound).
    pub log_bytes: u64,
    /// Entries dropped from the log because it outgrew its bound: treated as durable
    /// although never synced (cumulative since the mount).
    pub forced_durable_ops: u64,
    /// Bytes written by those entries.
    pub forced_durable_bytes: u64,
}

/// What [`crate::Mount::lose_unsynced`] or [`crate::Mount::tear`] dropped, for the history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loss {
    /// Undo entries applied.
    pub ops: u64,
    /// Bytes written by the dropped writes.
    pub bytes: u64,
    /// Files (backing paths, after the undo) whose content was rolled back.
    pub files: Vec<PathBuf>,
    /// Names whose creation, removal or rename was undone (backing paths at the time of the op).
    pub names: Vec<PathBuf>,
    /// The torn write, for `tear`.
    pub torn: Option<Torn>,
    /// Entries treated as durable since the mount because the log outgrew its bound
    /// (not dropped although never synced).
    pub forced_durable_ops: u64,
    /// Bytes written by those entries.
    pub forced_durable_bytes: u64,
    /// Undo steps that failed (each a description); the rest were applied.
    pub errors: Vec<String>,
}

/// The write `tear` cut short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Torn {
    /// The file (backing path, after the undo).
    pub path: PathBuf,
    /// Where the write started.
    pub offset: u64,
    /// How many bytes it wrote.
    pub len: u64,
    /// How many of them (a prefix) were kept: `0 <= kept < len`.
    pub kept: u64,
}
