//! The per-shard append-only log: record format, recovery scan, and the
//! direct-I/O writes behind group commit and rewrite.
//!
//! # Format
//!
//! A log is a sequence of records, each
//!
//! ```text
//! u32 LE  len     payload length (> 0)
//! u32 LE  crc     CRC-32 (IEEE) of the payload
//! payload         u32 LE argc, then argc × (u32 LE length, bytes)
//! ```
//!
//! A payload is a command in this server's own language (`SET k v PXAT t`,
//! `DEL k`, `RPUSH k a b`, ...). The first record of every file is a header
//! (`#corelet-kv-aof 1 <shard> <shards>`). Writes are direct I/O in whole
//! 4 KiB blocks, so a file may end in zero padding: a zero length marks the
//! end of the data.
//!
//! # Recovery
//!
//! A record that is cut short by the end of the file, or that fails its
//! checksum with nothing valid after it, is a torn tail: the write that
//! produced it never completed, so it was never acknowledged. It is dropped
//! with a warning. A bad record *followed by a valid one* is corruption in
//! the middle: the start fails with an error naming the file and offset.

use glommio::io::{DmaFile, OpenOptions};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Direct-I/O block size used for every write (a multiple of the usual
/// 512-byte logical sector).
pub const BLOCK: u64 = 4096;

/// Tag of the header record.
pub const HEADER_TAG: &[u8] = b"#corelet-kv-aof";

/// Appends one record holding `args`.
pub fn append_record(buf: &mut Vec<u8>, args: &[&[u8]]) {
    let len: usize = 4 + args.iter().map(|a| 4 + a.len()).sum::<usize>();
    buf.reserve(8 + len);
    let start = buf.len();
    buf.extend_from_slice(&(len as u32).to_le_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&(args.len() as u32).to_le_bytes());
    for a in args {
        buf.extend_from_slice(&(a.len() as u32).to_le_bytes());
        buf.extend_from_slice(a);
    }
    let crc = crc32fast::hash(&buf[start + 8..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The header record of shard `shard` of `shards`.
pub fn header(shard: usize, shards: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    let (s, n) = (shard.to_string(), shards.to_string());
    append_record(&mut buf, &[HEADER_TAG, b"1", s.as_bytes(), n.as_bytes()]);
    buf
}

/// Splits a payload into its arguments; `None` if malformed.
pub fn decode_payload(p: &[u8]) -> Option<Vec<&[u8]>> {
    let u32_at = |i: usize| -> Option<usize> {
        Some(u32::from_le_bytes(p.get(i..i + 4)?.try_into().ok()?) as usize)
    };
    let argc = u32_at(0)?;
    let mut args = Vec::with_capacity(argc.min(1024));
    let mut pos = 4;
    for _ in 0..argc {
        let len = u32_at(pos)?;
        pos += 4;
        args.push(p.get(pos..pos.checked_add(len)?)?);
        pos += len;
    }
    (pos == p.len()).then_some(args)
}

/// A valid record at `pos`: its payload and where the next one starts.
fn record_at(data: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let len = u32::from_le_bytes(data.get(pos..pos + 4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(data.get(pos + 4..pos + 8)?.try_into().ok()?);
    if len == 0 {
        return None;
    }
    let payload = data.get(pos + 8..(pos + 8).checked_add(len)?)?;
    (crc32fast::hash(payload) == crc && decode_payload(payload).is_some())
        .then_some((payload, pos + 8 + len))
}

/// What a scan of a log found.
#[derive(Debug, PartialEq, Eq)]
pub struct Scan {
    /// Offsets of the valid records, in order.
    pub records: Vec<(usize, usize)>,
    /// Where the data ends (the next record goes here).
    pub end: usize,
    /// Bytes of a torn tail that was dropped, if any.
    pub torn: Option<usize>,
}

/// Corruption in the middle of a log.
#[derive(Debug, PartialEq, Eq)]
pub struct Corrupt {
    /// Offset of the bad record.
    pub offset: usize,
}

/// Walks the records of a whole log image.
pub fn scan(data: &[u8]) -> Result<Scan, Corrupt> {
    let mut records = Vec::new();
    let mut pos = 0;
    loop {
        if pos == data.len() {
            return Ok(Scan {
                records,
                end: pos,
                torn: None,
            });
        }
        if let Some((payload, next)) = record_at(data, pos) {
            let start = next - payload.len();
            records.push((start, next));
            pos = next;
            continue;
        }
        // Padding after the last record, or a bad record.
        if data[pos..].iter().all(|&b| b == 0) {
            return Ok(Scan {
                records,
                end: pos,
                torn: None,
            });
        }
        if (pos + 1..data.len()).any(|p| record_at(data, p).is_some()) {
            return Err(Corrupt { offset: pos });
        }
        let torn = data.len() - pos;
        return Ok(Scan {
            records,
            end: pos,
            torn: Some(torn),
        });
    }
}

/// The file of shard `shard`'s log in `dir`.
pub fn log_path(dir: &Path, shard: usize) -> PathBuf {
    dir.join(format!("shard-{shard}.aof"))
}

/// The shard count recorded in the header of the log at `path`, if the
/// file exists and starts with a valid header.
pub fn header_shards(path: &Path) -> Option<usize> {
    let data = std::fs::read(path).ok()?;
    let (payload, _) = record_at(&data, 0)?;
    let args = decode_payload(payload)?;
    if args.len() != 4 || args[0] != HEADER_TAG {
        return None;
    }
    std::str::from_utf8(args[3]).ok()?.parse().ok()
}

/// The file a rewrite of shard `shard`'s log is built in.
pub fn rewrite_path(dir: &Path, shard: usize) -> PathBuf {
    dir.join(format!("shard-{shard}.aof.rewrite"))
}

/// Opens (creating if needed) a log for direct-I/O reads and writes.
///
/// A new or empty file first gets one block of zeros (padding, which
/// recovery reads as the end of the data). glommio 0.9 decides once per
/// device whether polled I/O works by reading the first file it opens, and
/// a read of an empty file "succeeds" — after which every read on that
/// device fails with `EOPNOTSUPP`. A block to read makes the probe honest.
pub async fn open(path: &Path) -> std::io::Result<DmaFile> {
    if std::fs::metadata(path).map_or(true, |m| m.len() == 0) {
        std::fs::write(path, [0u8; BLOCK as usize])?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .dma_open(path)
        .await
        .map_err(std::io::Error::from)
}

/// Reads a whole file.
pub async fn read_all(file: &DmaFile) -> std::io::Result<Vec<u8>> {
    let size = file.file_size().await.map_err(std::io::Error::from)?;
    let mut data = Vec::with_capacity(size as usize);
    let mut pos = 0u64;
    while pos < size {
        let want = (size - pos).min(1 << 20) as usize;
        let chunk = file
            .read_at(pos, want)
            .await
            .map_err(std::io::Error::from)?;
        if chunk.is_empty() {
            break;
        }
        data.extend_from_slice(&chunk);
        pos += chunk.len() as u64;
    }
    Ok(data)
}

/// Writes `bytes` at the block-aligned offset `pos` in whole blocks (the
/// last one zero-padded), in pieces of at most 1 MiB, then syncs if asked.
pub async fn write_blocks(
    file: &DmaFile,
    pos: u64,
    bytes: &[u8],
    sync: bool,
) -> std::io::Result<()> {
    debug_assert_eq!(pos % BLOCK, 0);
    const PIECE: usize = 1 << 20;
    let mut done = 0;
    while done < bytes.len() {
        let n = (bytes.len() - done).min(PIECE);
        let size = (n as u64).div_ceil(BLOCK) * BLOCK;
        let mut buf = file.alloc_dma_buffer(size as usize);
        let dst = buf.as_bytes_mut();
        dst[..n].copy_from_slice(&bytes[done..done + n]);
        dst[n..].fill(0);
        let w = file
            .write_at(buf, pos + done as u64)
            .await
            .map_err(std::io::Error::from)?;
        if w < size as usize {
            return Err(std::io::Error::other(format!(
                "short direct write: {w} of {size} bytes"
            )));
        }
        done += n;
    }
    if sync {
        file.fdatasync().await.map_err(std::io::Error::from)?;
    }
    Ok(())
}

/// Syncs a directory (after a rename in it).
pub async fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let d = glommio::io::Directory::open(dir)
        .await
        .map_err(std::io::Error::from)?;
    d.sync().await.map_err(std::io::Error::from)?;
    d.close().await.map_err(std::io::Error::from)
}

/// One flush of the log: the bytes from the start of the partial block on.
pub struct Flush {
    /// The file.
    pub file: Rc<DmaFile>,
    /// Block-aligned offset.
    pub pos: u64,
    /// What to write there.
    pub bytes: Vec<u8>,
    /// Whether to `fdatasync` after writing.
    pub sync: bool,
    /// After a rewrite: rename the file to this path and sync its
    /// directory before the flush counts as done.
    pub rename_to: Option<PathBuf>,
}

impl Flush {
    /// Performs the flush.
    pub async fn run(self) -> std::io::Result<()> {
        write_blocks(&self.file, self.pos, &self.bytes, self.sync).await?;
        if let Some(to) = self.rename_to {
            self.file.rename(&to).await.map_err(std::io::Error::from)?;
            let dir = to.parent().unwrap_or(Path::new("."));
            sync_dir(dir).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(records: &[&[&[u8]]]) -> Vec<u8> {
        let mut buf = Vec::new();
        for r in records {
            append_record(&mut buf, r);
        }
        buf
    }

    #[test]
    fn records_round_trip_and_padding_ends_the_log() {
        let mut data = log(&[&[b"SET", b"k", b"v"], &[b"DEL", b"k"]]);
        let len = data.len();
        data.resize(4096, 0);
        let s = scan(&data).unwrap();
        assert_eq!(s.end, len);
        assert_eq!(s.torn, None);
        assert_eq!(s.records.len(), 2);
        let (a, b) = s.records[0];
        assert_eq!(
            decode_payload(&data[a..b]).unwrap(),
            vec![&b"SET"[..], b"k", b"v"]
        );
    }

    #[test]
    fn torn_tail_is_dropped() {
        let full = log(&[&[b"SET", b"a", b"1"], &[b"SET", b"b", b"2"]]);
        let first = log(&[&[b"SET", b"a", b"1"]]).len();
        for cut in first + 1..full.len() {
            let s = scan(&full[..cut]).unwrap();
            assert_eq!((s.records.len(), s.end), (1, first), "cut at {cut}");
            assert_eq!(s.torn, Some(cut - first));
        }
        // A torn write that left the block partly old (zeros) and partly new.
        let mut flipped = full.clone();
        flipped[first + 10] ^= 0xff;
        let s = scan(&flipped).unwrap();
        assert_eq!(s.end, first);
    }

    #[test]
    fn corruption_in_the_middle_is_an_error() {
        let mut data = log(&[
            &[b"SET", b"a", b"1"],
            &[b"SET", b"b", b"2"],
            &[b"DEL", b"a"],
        ]);
        let first = log(&[&[b"SET", b"a", b"1"]]).len();
        data[first + 9] ^= 0x01; // inside the second record's payload
        assert_eq!(scan(&data), Err(Corrupt { offset: first }));
    }
}
