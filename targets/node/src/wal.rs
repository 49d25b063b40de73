//! The durable log: an append-only file of framed records, fsynced before anything that
//! depends on them leaves the node.
//!
//! Records that nothing leaving the node depends on yet may be written without an fsync
//! ([`Wal::append_unsynced`]); the next [`Wal::append`] or [`Wal::sync`] makes them
//! durable together with what follows, before anything that could depend on them leaves.
//!
//! ```text
//!   frame = len: u32 LE | crc(len): u32 LE | crc(payload): u32 LE | payload (JSON)
//! ```
//!
//! A node killed mid-write leaves a prefix of what it wrote, perhaps followed by zeros the
//! file system had already allocated. So on open a bad frame is a *torn tail* (dropped with
//! a warning, the file truncated to the last whole record) when it reaches the end of the
//! file or only zeros follow it. The length has its own checksum so that a flipped length
//! bit cannot pass for a record running off the end of the file. A bad frame with real data after it cannot come from a
//! crash: that is corruption, and an error, never a silent loss of the records after it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::crc32::crc32;

const HEADER: usize = 12;
/// No record we write comes near this; a larger length is garbage.
const MAX_RECORD: usize = 256 << 20;

/// Something wrong with the log file.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("{path}: {what}")]
    Io {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
    #[error(
        "{path}: record {index} at byte {offset} is corrupt ({reason}) and {following} bytes of data follow it, so it is not a torn write"
    )]
    Corrupt {
        path: PathBuf,
        index: usize,
        offset: u64,
        reason: &'static str,
        following: u64,
    },
    #[error("{path}: record {index} does not decode")]
    Decode {
        path: PathBuf,
        index: usize,
        source: serde_json::Error,
    },
    #[error("record of {0} bytes is too large for the log")]
    TooLarge(usize),
    #[error("record does not encode: {0}")]
    Encode(serde_json::Error),
}

/// What [`Wal::open`] dropped from the end of a log left by a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Where the last whole record ends (the new file length).
    pub offset: u64,
    /// How many bytes were cut off.
    pub dropped: u64,
    pub reason: &'static str,
}

/// An open log.
#[derive(Debug)]
pub struct Wal {
    path: PathBuf,
    file: File,
    records: usize,
    /// Records written since the last fsync.
    unsynced: bool,
    /// fsyncs of appended records so far (what tests of the runtime count).
    syncs: u64,
    /// Whether fsyncs happen at all: off only for the planted disk bug `no-fsync`
    /// ([`sunder_core::protocol::DISK_BUGS`]), which writes every record and never
    /// makes one durable.
    fsync: bool,
}

/// The result of opening a log: the log, positioned for appends, and what it held.
#[derive(Debug)]
pub struct Opened {
    pub wal: Wal,
    pub payloads: Vec<Vec<u8>>,
    pub torn: Option<TornTail>,
}

impl Wal {
    /// Opens (creating if missing) the log at `path` and reads every whole record.
    pub fn open(path: &Path) -> Result<Opened, WalError> {
        let io = |what| {
            move |source| WalError::Io {
                path: path.to_path_buf(),
                what,
                source,
            }
        };
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io("open"))?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf).map_err(io("read"))?;
        let (payloads, torn) = scan(path, &buf)?;
        if let Some(t) = &torn {
            file.set_len(t.offset).map_err(io("truncate torn tail"))?;
            file.sync_all().map_err(io("fsync"))?;
        }
        if !existed {
            sync_dir(path)?;
        }
        let records = payloads.len();
        Ok(Opened {
            wal: Wal {
                path: path.to_path_buf(),
                file,
                records,
                unsynced: false,
                syncs: 0,
                fsync: true,
            },
            payloads,
            torn,
        })
    }

    /// Appends the payloads as one write and fsyncs before returning (making any records
    /// written unsynced before them durable too).
    pub fn append(&mut self, payloads: &[Vec<u8>]) -> Result<(), WalError> {
        self.append_unsynced(payloads)?;
        self.sync()
    }

    /// Appends the payloads as one write, without an fsync: a crash of the machine may
    /// lose them, so nothing that depends on them may leave the node before a later
    /// [`Wal::append`] or [`Wal::sync`].
    pub fn append_unsynced(&mut self, payloads: &[Vec<u8>]) -> Result<(), WalError> {
        if payloads.is_empty() {
            return Ok(());
        }
        let buf = frames(payloads)?;
        self.file.write_all(&buf).map_err(|source| WalError::Io {
            path: self.path.clone(),
            what: "append",
            source,
        })?;
        self.records += payloads.len();
        self.unsynced = true;
        Ok(())
    }

    /// Turns every later fsync of this log (appends, compactions) into nothing: the
    /// planted disk bug `no-fsync`. Records are still written, so only a fault that drops
    /// unsynced data (`lose-unsynced`) can tell.
    pub fn skip_fsync(&mut self) {
        self.fsync = false;
    }

    /// Makes every record written so far durable (nothing to do when it is).
    pub fn sync(&mut self) -> Result<(), WalError> {
        if !self.unsynced {
            return Ok(());
        }
        if !self.fsync {
            self.unsynced = false;
            return Ok(());
        }
        self.file.sync_data().map_err(|source| WalError::Io {
            path: self.path.clone(),
            what: "fsync",
            source,
        })?;
        self.unsynced = false;
        self.syncs += 1;
        Ok(())
    }

    /// How many times appended records were fsynced.
    pub fn syncs(&self) -> u64 {
        self.syncs
    }

    /// Replaces the whole log with `payloads`, atomically: a crash leaves either the old
    /// log or the new one, never a mix.
    pub fn compact(&mut self, payloads: &[Vec<u8>]) -> Result<(), WalError> {
        let buf = frames(payloads)?;
        let tmp = self.path.with_extension("compact.tmp");
        let tmp_ref = &tmp;
        let io = |what| {
            move |source| WalError::Io {
                path: tmp_ref.clone(),
                what,
                source,
            }
        };
        let mut f = File::create(&tmp).map_err(io("create"))?;
        f.write_all(&buf).map_err(io("write"))?;
        if self.fsync {
            f.sync_data().map_err(io("fsync"))?;
        }
        drop(f);
        std::fs::rename(&tmp, &self.path).map_err(io("rename over the log"))?;
        if self.fsync {
            sync_dir(&self.path)?;
        }
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(|source| WalError::Io {
                path: self.path.clone(),
                what: "reopen",
                source,
            })?;
        self.records = payloads.len();
        self.unsynced = false;
        Ok(())
    }

    /// Typed [`Wal::append`]: each record as one JSON payload.
    pub fn append_json<R: Serialize>(&mut self, records: &[R]) -> Result<(), WalError> {
        self.append(&encode_all(records)?)
    }

    /// Typed [`Wal::append_unsynced`].
    pub fn append_json_unsynced<R: Serialize>(&mut self, records: &[R]) -> Result<(), WalError> {
        self.append_unsynced(&encode_all(records)?)
    }

    /// Typed [`Wal::compact`].
    pub fn compact_json<R: Serialize>(&mut self, records: &[R]) -> Result<(), WalError> {
        self.compact(&encode_all(records)?)
    }

    /// Decodes payloads read by [`Wal::open`].
    pub fn decode_all<R: DeserializeOwned>(
        &self,
        payloads: &[Vec<u8>],
    ) -> Result<Vec<R>, WalError> {
        payloads
            .iter()
            .enumerate()
            .map(|(index, p)| {
                serde_json::from_slice(p).map_err(|source| WalError::Decode {
                    path: self.path.clone(),
                    index,
                    source,
                })
            })
            .collect()
    }

    /// Number of records in the log.
    pub fn len(&self) -> usize {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn encode_all<R: Serialize>(records: &[R]) -> Result<Vec<Vec<u8>>, WalError> {
    records
        .iter()
        .map(|r| serde_json::to_vec(r).map_err(WalError::Encode))
        .collect()
}

fn frames(payloads: &[Vec<u8>]) -> Result<Vec<u8>, WalError> {
    let mut buf = Vec::with_capacity(payloads.iter().map(|p| p.len() + HEADER).sum());
    for p in payloads {
        if p.is_empty() || p.len() > MAX_RECORD {
            return Err(WalError::TooLarge(p.len()));
        }
        let len = (p.len() as u32).to_le_bytes();
        buf.extend_from_slice(&len);
        buf.extend_from_slice(&crc32(&len).to_le_bytes());
        buf.extend_from_slice(&crc32(p).to_le_bytes());
        buf.extend_from_slice(p);
    }
    Ok(buf)
}

fn scan(path: &Path, buf: &[u8]) -> Result<(Vec<Vec<u8>>, Option<TornTail>), WalError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let torn = |reason| TornTail {
            offset: pos as u64,
            dropped: rest.len() as u64,
            reason,
        };
        if rest.len() < HEADER {
            return Ok((out, Some(torn("incomplete header"))));
        }
        let word = |i: usize| u32::from_le_bytes(rest[i..i + 4].try_into().expect("4 bytes"));
        let len = word(0) as usize;
        let bad = if crc32(&rest[..4]) != word(4) || len == 0 || len > MAX_RECORD {
            Some("corrupt header")
        } else if HEADER + len > rest.len() {
            return Ok((out, Some(torn("record runs past the end of the file"))));
        } else if crc32(&rest[HEADER..HEADER + len]) != word(8) {
            Some("checksum mismatch")
        } else {
            None
        };
        match bad {
            None => {
                out.push(rest[HEADER..HEADER + len].to_vec());
                pos += HEADER + len;
            }
            Some(reason) => {
                let frame_end = if reason == "corrupt header" {
                    HEADER
                } else {
                    HEADER + len
                };
                let following = &rest[frame_end.min(rest.len())..];
                if following.iter().all(|&b| b == 0) {
                    return Ok((out, Some(torn(reason))));
                }
                return Err(WalError::Corrupt {
                    path: path.to_path_buf(),
                    index: out.len(),
                    offset: pos as u64,
                    reason,
                    following: following.len() as u64,
                });
            }
        }
    }
    Ok((out, None))
}

/// Makes a create or rename in the log's directory durable.
fn sync_dir(path: &Path) -> Result<(), WalError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| WalError::Io {
            path: dir.to_path_buf(),
            what: "fsync directory",
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payloads(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| format!("{{\"record\":{i},\"pad\":\"{}\"}}", "x".repeat(i)).into_bytes())
            .collect()
    }

    fn write_log(path: &Path, n: usize) -> Vec<u64> {
        let mut w = Wal::open(path).unwrap().wal;
        let mut ends = Vec::new();
        for p in payloads(n) {
            w.append(&[p]).unwrap();
            ends.push(std::fs::metadata(path).unwrap().len());
        }
        ends
    }

    #[test]
    fn round_trip_and_reopen_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.log");
        let mut w = Wal::open(&path).unwrap().wal;
        w.append(&payloads(3)).unwrap();
        drop(w);
        let o = Wal::open(&path).unwrap();
        assert_eq!(o.payloads, payloads(3));
        assert!(o.torn.is_none());
        let mut w = o.wal;
        w.append(&payloads(5)[3..]).unwrap();
        assert_eq!(w.len(), 5);
        assert_eq!(Wal::open(&path).unwrap().payloads, payloads(5));
    }

    #[test]
    fn torn_tail_at_every_offset_of_last_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.log");
        let ends = write_log(&path, 4);
        let full = std::fs::read(&path).unwrap();
        let last_start = ends[2] as usize;
        for cut in last_start..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let o = Wal::open(&path).unwrap();
            assert_eq!(o.payloads, payloads(3), "cut at {cut}");
            assert_eq!(o.torn.is_some(), cut > last_start, "cut at {cut}");
            assert_eq!(std::fs::metadata(&path).unwrap().len(), last_start as u64);
            // The log stays usable: the next append lands after the last whole record.
            let mut w = o.wal;
            w.append(&[b"{\"after\":1}".to_vec()]).unwrap();
            let again = Wal::open(&path).unwrap();
            assert_eq!(again.payloads.len(), 4);
            assert_eq!(again.payloads[3], b"{\"after\":1}".to_vec());
        }
    }

    #[test]
    fn zero_filled_tail_is_torn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.log");
        write_log(&path, 2);
        let mut full = std::fs::read(&path).unwrap();
        full.extend_from_slice(&[0u8; 100]);
        std::fs::write(&path, &full).unwrap();
        let o = Wal::open(&path).unwrap();
        assert_eq!(o.payloads, payloads(2));
        assert_eq!(o.torn.unwrap().dropped, 100);
    }

    #[test]
    fn garbled_last_record_is_torn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.log");
        write_log(&path, 3);
        let mut full = std::fs::read(&path).unwrap();
        let n = full.len();
        full[n - 2] ^= 0x40;
        std::fs::write(&path, &full).unwrap();
        let o = Wal::open(&path).unwrap();
        assert_eq!(o.payloads, payloads(2));
        assert_eq!(o.torn.unwrap().reason, "checksum mismatch");
    }

    #[test]
    fn corruption_in_the_middle_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.log");
        let ends = write_log(&path, 4);
        let full = std::fs::read(&path).unwrap();
        // A flipped bit anywhere in record 1 (header or payload) must not be read as
        // anything, nor silently drop records 2 and 3.
        for at in ends[0] as usize..ends[1] as usize {
            let mut bad = full.clone();
            bad[at] ^= 0x01;
            std::fs::write(&path, &bad).unwrap();
            match Wal::open(&path) {
                Err(WalError::Corrupt {
                    index: 1, offset, ..
                }) => assert_eq!(offset, ends[0]),
                other => panic!("flip at {at}: expected corruption of record 1, got {other:?}"),
            }
        }
    }

    #[test]
    fn compact_replaces_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.log");
        let mut w = Wal::open(&path).unwrap().wal;
        w.append(&payloads(5)).unwrap();
        w.compact(&payloads(2)).unwrap();
        w.append(&[b"{\"x\":1}".to_vec()]).unwrap();
        let o = Wal::open(&path).unwrap();
        assert_eq!(o.payloads.len(), 3);
        assert_eq!(o.payloads[..2], payloads(2)[..]);
        assert!(!path.with_extension("compact.tmp").exists());
    }

    #[test]
    fn typed_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.log");
        let mut w = Wal::open(&path).unwrap().wal;
        w.append_json(&[(1u64, "a".to_string()), (2, "b".to_string())])
            .unwrap();
        let o = Wal::open(&path).unwrap();
        let back: Vec<(u64, String)> = o.wal.decode_all(&o.payloads).unwrap();
        assert_eq!(back, vec![(1, "a".into()), (2, "b".into())]);
    }
}
