//! Docker's log driver `LogEntry` protobuf message, coded by hand, and its
//! framing on the FIFO and in `ReadLogs` replies: a 4-byte big-endian
//! length, then that many bytes of message.
//!
//! ```text
//! message LogEntry {
//!   string source = 1; int64 time_nano = 2; bytes line = 3; bool partial = 4;
//!   PartialLogEntryMetadata partial_log_metadata = 5;  // skipped here
//! }
//! ```

use std::io::{self, Read, Write};

/// The largest frame read (dockerd's own reader allows 1 MB).
pub const MAX_FRAME: usize = 16 << 20;

/// One log message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogEntry {
    /// `stdout` or `stderr`.
    pub source: String,
    /// When it was logged, in nanoseconds since the epoch.
    pub time_nano: i64,
    /// The line, without its newline.
    pub line: Vec<u8>,
    /// Whether this is a part of a longer line, more to come.
    pub partial: bool,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(u8::try_from(v & 0x7f).unwrap_or(0) | 0x80);
        v >>= 7;
    }
    out.push(u8::try_from(v).unwrap_or(0));
}

fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, field << 3 | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint(buf: &[u8], at: &mut usize) -> Result<u64, &'static str> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at).ok_or("truncated varint")?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err("varint too long")
}

fn take<'a>(buf: &'a [u8], at: &mut usize, n: u64) -> Result<&'a [u8], &'static str> {
    let n = usize::try_from(n).map_err(|_| "field too long")?;
    let end = at.checked_add(n).filter(|&e| e <= buf.len());
    let bytes = &buf[*at..end.ok_or("truncated field")?];
    *at += n;
    Ok(bytes)
}

impl LogEntry {
    /// The protobuf encoding (proto3: default values left out).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.line.len() + self.source.len() + 20);
        if !self.source.is_empty() {
            put_bytes(&mut out, 1, self.source.as_bytes());
        }
        if self.time_nano != 0 {
            put_varint(&mut out, 2 << 3);
            put_varint(&mut out, self.time_nano.cast_unsigned());
        }
        if !self.line.is_empty() {
            put_bytes(&mut out, 3, &self.line);
        }
        if self.partial {
            put_varint(&mut out, 4 << 3);
            put_varint(&mut out, 1);
        }
        out
    }

    /// Decodes a protobuf message, skipping fields it does not know.
    pub fn decode(buf: &[u8]) -> Result<Self, &'static str> {
        let mut entry = Self::default();
        let mut at = 0;
        while at < buf.len() {
            let key = varint(buf, &mut at)?;
            match (key >> 3, key & 7) {
                (1, 2) => {
                    let n = varint(buf, &mut at)?;
                    entry.source = String::from_utf8_lossy(take(buf, &mut at, n)?).into_owned();
                }
                (2, 0) => entry.time_nano = varint(buf, &mut at)?.cast_signed(),
                (3, 2) => {
                    let n = varint(buf, &mut at)?;
                    entry.line = take(buf, &mut at, n)?.to_vec();
                }
                (4, 0) => entry.partial = varint(buf, &mut at)? != 0,
                (_, 0) => {
                    varint(buf, &mut at)?;
                }
                (_, 1) => {
                    take(buf, &mut at, 8)?;
                }
                (_, 2) => {
                    let n = varint(buf, &mut at)?;
                    take(buf, &mut at, n)?;
                }
                (_, 5) => {
                    take(buf, &mut at, 4)?;
                }
                _ => return Err("unsupported wire type"),
            }
        }
        Ok(entry)
    }
}

/// Writes `entry` as one length-prefixed frame.
pub fn write_frame(out: &mut (impl Write + ?Sized), entry: &LogEntry) -> io::Result<()> {
    let msg = entry.encode();
    let len = u32::try_from(msg.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "log entry too long"))?;
    let mut frame = Vec::with_capacity(msg.len() + 4);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&msg);
    out.write_all(&frame)
}

/// Reads one frame; `None` at the end of the stream between frames.
pub fn read_frame(input: &mut impl Read) -> io::Result<Option<LogEntry>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < len.len() {
        match input.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("log frame of {len} bytes"),
        ));
    }
    let mut msg = vec![0; len];
    input.read_exact(&mut msg)?;
    LogEntry::decode(&msg)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(source: &str, time_nano: i64, line: &[u8], partial: bool) -> LogEntry {
        LogEntry {
            source: source.to_owned(),
            time_nano,
            line: line.to_vec(),
            partial,
        }
    }

    #[test]
    fn encodes_as_gogo_protobuf_does() {
        // source "stdout", time_nano 1, line "hi", partial true.
        let want = b"\x0a\x06stdout\x10\x01\x1a\x02hi\x20\x01";
        assert_eq!(entry("stdout", 1, b"hi", true).encode(), want);
        assert_eq!(LogEntry::default().encode(), b"");
    }

    #[test]
    fn round_trips() {
        for e in [
            entry("stdout", 1_700_000_000_123_456_789, b"hello world", false),
            entry("stderr", -5, &[0, 0xff, b'\n'], true),
            entry("", 0, &vec![b'x'; 70_000], false),
            LogEntry::default(),
        ] {
            assert_eq!(LogEntry::decode(&e.encode()).unwrap(), e);
        }
    }

    #[test]
    fn skips_unknown_fields() {
        let mut buf = entry("stdout", 7, b"l", false).encode();
        // partial_log_metadata {id "x" last true ordinal 1}, a fixed64 and a fixed32.
        buf.extend_from_slice(b"\x2a\x07\x0a\x01x\x10\x01\x18\x01");
        buf.extend_from_slice(b"\x31\x01\x02\x03\x04\x05\x06\x07\x08\x3d\x01\x02\x03\x04");
        assert_eq!(
            LogEntry::decode(&buf).unwrap(),
            entry("stdout", 7, b"l", false)
        );
        assert!(LogEntry::decode(b"\x1a\x05ab").is_err());
        assert!(LogEntry::decode(b"\x0b").is_err());
        assert!(LogEntry::decode(b"\x10\xff").is_err());
    }

    #[test]
    fn frames() {
        let entries = [
            entry("stdout", 1, b"one", false),
            entry("stderr", 2, b"two", true),
        ];
        let mut stream = Vec::new();
        for e in &entries {
            write_frame(&mut stream, e).unwrap();
        }
        assert_eq!(&stream[..4], &[0, 0, 0, 15]);
        let mut r = &stream[..];
        assert_eq!(read_frame(&mut r).unwrap().as_ref(), Some(&entries[0]));
        assert_eq!(read_frame(&mut r).unwrap().as_ref(), Some(&entries[1]));
        assert!(read_frame(&mut r).unwrap().is_none());
        let mut cut = &stream[..6];
        assert!(read_frame(&mut cut).is_err());
        let mut cut = &stream[..2];
        assert!(read_frame(&mut cut).is_err());
        let mut huge: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(read_frame(&mut huge).is_err());
    }
}
