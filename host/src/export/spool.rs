//! The disk spool of the gRPC exporter: encoded batches in append-only segment files,
//! replayed in order, surviving restarts and `kill -9` (every record is written with one
//! `write(2)` before it counts as spooled; `fsync: true` also survives power loss).
//!
//! Layout: `<dir>/<20-digit id>.seg`. A record is a 16-byte header (magic `TSP1`, payload
//! length, event count, CRC-32 of the payload, little-endian) and the payload (the batch's
//! events in protobuf form: each `tapio.v1.Event` as field 2 of `EventBatch`, so the bytes
//! decode as an `EventBatch` without a sequence). A segment is deleted once it was read to its end
//! and every batch read from it was acked. After a restart reading starts again at the
//! oldest segment's beginning: batches acked just before a crash may be sent twice (servers
//! de-duplicate by event id). A torn or corrupt record ends its segment: the rest is counted
//! as dropped and logged. Past `max_bytes` the oldest segments are deleted, their unread
//! events counted as dropped and logged.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const MAGIC: u32 = u32::from_le_bytes(*b"TSP1");
const HEADER: usize = 16;
/// Records larger than this are refused as corrupt.
const MAX_RECORD: usize = 256 << 20;

/// A spool failure.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// An OS call on a spool file failed.
    #[error("spool {op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A record cannot be stored (larger than the spool).
    #[error("spool: record of {bytes} bytes exceeds max_bytes {max}")]
    TooLarge {
        /// Record size.
        bytes: u64,
        /// The cap.
        max: u64,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Spool settings.
#[derive(Debug, Clone)]
pub struct SpoolSettings {
    /// The directory.
    pub dir: PathBuf,
    /// Most bytes on disk.
    pub max_bytes: u64,
    /// Size at which the writer starts a new segment.
    pub segment_bytes: u64,
    /// fsync every record.
    pub fsync: bool,
}

#[derive(Debug)]
struct Segment {
    id: u64,
    bytes: u64,
    events: u64,
    /// Events of records already read (handed out).
    read_events: u64,
    /// Records handed out and not acked yet.
    unacked: u64,
}

/// A record read back from the spool.
#[derive(Debug)]
pub struct Record {
    /// The segment it came from (pass to [`Spool::ack`]).
    pub segment: u64,
    /// Its events.
    pub events: u64,
    /// The encoded batch.
    pub payload: Vec<u8>,
}

/// What [`Spool::append`] had to drop to make room.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Evicted {
    /// Unread events of deleted segments.
    pub events: u64,
    /// Segments deleted.
    pub segments: u64,
}

/// What [`Spool::next`] found unreadable.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Corrupt {
    /// Events of the segment's rest, lost.
    pub events: u64,
}

/// The spool.
#[derive(Debug)]
pub struct Spool {
    settings: SpoolSettings,
    segments: VecDeque<Segment>,
    writer: Option<File>,
    /// Reader position: index into `segments` by id, byte offset.
    reader: Option<(u64, File, u64)>,
}

impl Spool {
    /// Opens (creating) the spool directory and indexes the segments found.
    pub fn open(settings: SpoolSettings) -> Result<(Self, Corrupt), SpoolError> {
        std::fs::create_dir_all(&settings.dir).map_err(io("create", &settings.dir))?;
        let mut ids: Vec<u64> = std::fs::read_dir(&settings.dir)
            .map_err(io("list", &settings.dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".seg")?
                    .parse::<u64>()
                    .ok()
            })
            .collect();
        ids.sort_unstable();
        let mut spool = Spool {
            settings,
            segments: VecDeque::new(),
            writer: None,
            reader: None,
        };
        let mut corrupt = Corrupt::default();
        for id in ids {
            let (segment, lost) = spool.index(id)?;
            corrupt.events += lost;
            if segment.events > 0 {
                spool.segments.push_back(segment);
            } else {
                let path = spool.path(id);
                std::fs::remove_file(&path).map_err(io("remove", &path))?;
            }
        }
        Ok((spool, corrupt))
    }

    fn path(&self, id: u64) -> PathBuf {
        self.settings.dir.join(format!("{id:020}.seg"))
    }

    /// Scans a segment's headers; truncates a torn tail.
    fn index(&self, id: u64) -> Result<(Segment, u64), SpoolError> {
        let path = self.path(id);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io("open", &path))?;
        let len = file.metadata().map_err(io("stat", &path))?.len();
        let mut seg = Segment {
            id,
            bytes: 0,
            events: 0,
            read_events: 0,
            unacked: 0,
        };
        let mut header = [0u8; HEADER];
        loop {
            if seg.bytes == len {
                return Ok((seg, 0));
            }
            let ok = file.read_exact(&mut header).is_ok() && {
                let (magic, plen, _, _) = parse_header(&header);
                magic == MAGIC
                    && (plen as usize) <= MAX_RECORD
                    && seg.bytes + (HEADER as u64) + u64::from(plen) <= len
            };
            if !ok {
                tracing::warn!(segment = %path.display(), offset = seg.bytes, "spool segment ends with a torn record; truncated");
                file.set_len(seg.bytes).map_err(io("truncate", &path))?;
                return Ok((seg, 0));
            }
            let (_, plen, events, _) = parse_header(&header);
            file.seek(SeekFrom::Current(i64::from(plen)))
                .map_err(io("seek", &path))?;
            seg.bytes += HEADER as u64 + u64::from(plen);
            seg.events += u64::from(events);
        }
    }

    /// Whether no unread record is left.
    pub fn is_empty(&self) -> bool {
        self.segments.iter().all(|s| s.read_events == s.events)
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Unread events.
    pub fn unread_events(&self) -> u64 {
        self.segments.iter().map(|s| s.events - s.read_events).sum()
    }

    /// Appends one record of `events` events. Makes room first by deleting the oldest
    /// segments (returned, for counting). On a write error the partial record is cut off
    /// and nothing counts as stored.
    pub fn append(&mut self, payload: &[u8], events: u64) -> Result<Evicted, SpoolError> {
        let size = (HEADER + payload.len()) as u64;
        if size > self.settings.max_bytes {
            return Err(SpoolError::TooLarge {
                bytes: size,
                max: self.settings.max_bytes,
            });
        }
        let mut evicted = Evicted::default();
        while self.bytes() + size > self.settings.max_bytes && !self.segments.is_empty() {
            let oldest = self.segments.front().map(|s| s.id);
            if self.writer.is_some() && self.segments.len() == 1 {
                self.writer = None; // the next append starts a new segment
            }
            if let Some(id) = oldest {
                let seg = self.segments.pop_front().expect("not empty");
                evicted.events += seg.events - seg.read_events;
                evicted.segments += 1;
                if self.reader.as_ref().is_some_and(|r| r.0 == id) {
                    self.reader = None;
                }
                let path = self.path(id);
                std::fs::remove_file(&path).map_err(io("remove", &path))?;
            }
        }
        let rotate = self
            .segments
            .back()
            .is_none_or(|s| s.bytes + size > self.settings.segment_bytes.max(size))
            || self.writer.is_none();
        if rotate {
            let id = self.segments.back().map_or(1, |s| s.id + 1);
            let path = self.path(id);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io("create", &path))?;
            self.writer = Some(file);
            self.segments.push_back(Segment {
                id,
                bytes: 0,
                events: 0,
                read_events: 0,
                unacked: 0,
            });
        }
        let seg = self.segments.back_mut().expect("a segment");
        let path = self.settings.dir.join(format!("{:020}.seg", seg.id));
        let mut record = Vec::with_capacity(size as usize);
        record.extend_from_slice(&MAGIC.to_le_bytes());
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&(events as u32).to_le_bytes());
        record.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        record.extend_from_slice(payload);
        let file = self.writer.as_mut().expect("writer");
        let written = file.write_all(&record).and_then(|()| {
            if self.settings.fsync {
                file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(source) = written {
            // Cut the torn record off; the next append starts a fresh segment.
            let _ = file.set_len(seg.bytes);
            self.writer = None;
            return Err(SpoolError::Io {
                op: "write",
                path,
                source,
            });
        }
        seg.bytes += size;
        seg.events += events;
        Ok(evicted)
    }

    /// The oldest unread record, or `None`. A corrupt record ends its segment: the rest is
    /// reported in `corrupt` and skipped.
    pub fn next(&mut self, corrupt: &mut Corrupt) -> Result<Option<Record>, SpoolError> {
        loop {
            let Some(seg) = self.segments.iter().find(|s| s.read_events < s.events) else {
                return Ok(None);
            };
            let id = seg.id;
            if self.reader.as_ref().is_none_or(|r| r.0 != id) {
                let path = self.path(id);
                let file = File::open(&path).map_err(io("open", &path))?;
                self.reader = Some((id, file, 0));
            }
            let (_, file, offset) = self.reader.as_mut().expect("reader");
            let mut header = [0u8; HEADER];
            let read = file.read_exact(&mut header).and_then(|()| {
                let (magic, plen, events, crc) = parse_header(&header);
                if magic != MAGIC || plen as usize > MAX_RECORD {
                    return Err(std::io::Error::other("bad record header"));
                }
                let mut payload = vec![0u8; plen as usize];
                file.read_exact(&mut payload)?;
                if crc32fast::hash(&payload) != crc {
                    return Err(std::io::Error::other("checksum mismatch"));
                }
                Ok((payload, events))
            });
            let seg = self
                .segments
                .iter_mut()
                .find(|s| s.id == id)
                .expect("segment");
            match read {
                Ok((payload, events)) => {
                    *offset += (HEADER + payload.len()) as u64;
                    seg.read_events += u64::from(events);
                    seg.unacked += 1;
                    return Ok(Some(Record {
                        segment: id,
                        events: u64::from(events),
                        payload,
                    }));
                }
                Err(e) => {
                    let lost = seg.events - seg.read_events;
                    tracing::error!(segment = id, offset = *offset, error = %e, lost_events = lost, "corrupt spool record: the rest of the segment is dropped");
                    corrupt.events += lost;
                    seg.read_events = seg.events;
                    self.reader = None;
                    self.collect()?;
                }
            }
        }
    }

    /// Marks one record of `segment` acked; deletes segments read to the end and fully
    /// acked.
    pub fn ack(&mut self, segment: u64) -> Result<(), SpoolError> {
        if let Some(seg) = self.segments.iter_mut().find(|s| s.id == segment) {
            seg.unacked = seg.unacked.saturating_sub(1);
        }
        self.collect()
    }

    /// Forgets the reader positions of unacked records: after a reconnect they are
    /// resent from memory, so only the counters change. (Kept for symmetry; records stay
    /// on disk until acked.)
    fn collect(&mut self) -> Result<(), SpoolError> {
        while let Some(front) = self.segments.front() {
            let done = front.read_events == front.events && front.unacked == 0;
            // Never delete the segment the writer appends to.
            let writing = self.writer.is_some() && self.segments.len() == 1;
            if !done || writing {
                break;
            }
            let id = front.id;
            self.segments.pop_front();
            if self.reader.as_ref().is_some_and(|r| r.0 == id) {
                self.reader = None;
            }
            let path = self.path(id);
            std::fs::remove_file(&path).map_err(io("remove", &path))?;
        }
        Ok(())
    }
}

fn parse_header(h: &[u8; HEADER]) -> (u32, u32, u32, u32) {
    let word = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().expect("4 bytes"));
    (word(0), word(4), word(8), word(12))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path, max: u64, seg: u64) -> SpoolSettings {
        SpoolSettings {
            dir: dir.to_owned(),
            max_bytes: max,
            segment_bytes: seg,
            fsync: false,
        }
    }

    fn drain(spool: &mut Spool) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut corrupt = Corrupt::default();
        while let Some(r) = spool.next(&mut corrupt).unwrap() {
            spool.ack(r.segment).unwrap();
            out.push(r.payload);
        }
        assert_eq!(corrupt, Corrupt::default());
        out
    }

    #[test]
    fn records_come_back_in_order_across_segments_and_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut spool, _) = Spool::open(settings(dir.path(), 1 << 20, 100)).unwrap();
        for i in 0..10u8 {
            spool.append(&[i; 40], 3).unwrap();
        }
        assert_eq!(spool.unread_events(), 30);
        // Read two without acking, then "crash": a reopen replays from the start.
        let mut c = Corrupt::default();
        assert_eq!(spool.next(&mut c).unwrap().unwrap().payload, vec![0; 40]);
        drop(spool);
        let (mut spool, corrupt) = Spool::open(settings(dir.path(), 1 << 20, 100)).unwrap();
        assert_eq!(corrupt, Corrupt::default());
        let got = drain(&mut spool);
        assert_eq!(got, (0..10u8).map(|i| vec![i; 40]).collect::<Vec<_>>());
        assert!(spool.is_empty());
        spool.append(&[99; 10], 1).unwrap();
        assert_eq!(drain(&mut spool), vec![vec![99; 10]]);
        // Every fully acked segment but the one being written is gone.
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 1);
    }

    #[test]
    fn past_the_cap_the_oldest_are_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        // 56-byte records, 2 per segment, at most 4 records on disk.
        let (mut spool, _) = Spool::open(settings(dir.path(), 4 * 56, 112)).unwrap();
        let mut evicted = 0;
        for i in 0..10u8 {
            evicted += spool.append(&[i; 40], 5).unwrap().events;
        }
        assert!(spool.bytes() <= 4 * 56);
        assert_eq!(
            evicted + spool.unread_events(),
            50,
            "nothing vanishes uncounted"
        );
        let got = drain(&mut spool);
        assert_eq!(got.last().unwrap(), &vec![9; 40], "the newest survive");
        assert_eq!(got.first().unwrap(), &vec![10 - got.len() as u8; 40]);
    }

    #[test]
    fn a_torn_tail_is_cut_and_a_corrupt_record_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut spool, _) = Spool::open(settings(dir.path(), 1 << 20, 1 << 20)).unwrap();
        spool.append(&[1; 40], 2).unwrap();
        spool.append(&[2; 40], 2).unwrap();
        drop(spool);
        let seg = dir.path().join(format!("{:020}.seg", 1));
        // Torn tail: half a header.
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[0x54, 0x53]).unwrap();
        drop(f);
        let (spool, _) = Spool::open(settings(dir.path(), 1 << 20, 1 << 20)).unwrap();
        assert_eq!(spool.unread_events(), 4);
        drop(spool);
        // Corrupt payload of the second record.
        let mut bytes = std::fs::read(&seg).unwrap();
        assert_eq!(bytes.len(), 112);
        bytes[100] ^= 0xff;
        std::fs::write(&seg, bytes).unwrap();
        let (mut spool, _) = Spool::open(settings(dir.path(), 1 << 20, 1 << 20)).unwrap();
        let mut corrupt = Corrupt::default();
        let r = spool.next(&mut corrupt).unwrap().unwrap();
        assert_eq!(r.payload, vec![1; 40]);
        assert!(spool.next(&mut corrupt).unwrap().is_none());
        assert_eq!(corrupt.events, 2);
    }

    #[test]
    fn a_failed_write_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut spool, _) = Spool::open(settings(dir.path(), 1000, 1000)).unwrap();
        let err = spool.append(&[0; 2000], 1).unwrap_err();
        assert!(matches!(err, SpoolError::TooLarge { .. }), "{err}");
        assert_eq!(spool.unread_events(), 0);
    }
}
