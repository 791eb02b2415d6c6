//! The tar-split: what a layer's tar held besides its files' contents, so
//! that the exact tar can be rebuilt from it and the extracted files.
//!
//! A gzip stream of records, written while the layer is applied:
//!
//! - `R` len:u32 bytes — raw archive bytes (headers, PAX and GNU long-name
//!   entries, padding, end blocks, whatever follows them), verbatim;
//! - `C` len:u16 path size:u64 crc32:u32 — a regular file's contents,
//!   found at `path` (as extracted) in the layer's directory, with their
//!   CRC-32 (as containers/storage keeps a CRC-64: a check against change
//!   on disk, at many GB/s; `diff` also checks the whole tar's digest, so
//!   it never hands over a tar whose digest lies);
//! - `N` len:u16 path — another entry that lands at `path` (a directory,
//!   link, device or whiteout), for `check` to know what belongs there;
//! - `E` — the end.
//!
//! Little-endian integers. Memory stays bounded: raw bytes are flushed in
//! records of at most 64 KiB.

use std::io::{self, Read, Write};

use flate2::Compression as Level;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

const RAW_CHUNK: usize = 64 << 10;

/// One record of a tar-split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Archive bytes, verbatim.
    Raw(Vec<u8>),
    /// A regular file's contents: where it was extracted, its size and
    /// CRC-32.
    File {
        /// Path inside the layer directory.
        path: Vec<u8>,
        /// Bytes.
        size: u64,
        /// CRC-32 (zlib's) of the contents.
        crc32: u32,
    },
    /// Another entry's path inside the layer directory.
    Name(Vec<u8>),
}

/// Writes a tar-split.
pub(crate) struct SplitWriter<W: Write> {
    out: GzEncoder<W>,
    raw: Vec<u8>,
}

impl<W: Write> SplitWriter<W> {
    pub(crate) fn new(out: W) -> SplitWriter<W> {
        SplitWriter {
            out: GzEncoder::new(out, Level::fast()),
            raw: Vec::with_capacity(RAW_CHUNK),
        }
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = rest.len().min(RAW_CHUNK - self.raw.len());
            self.raw.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if self.raw.len() == RAW_CHUNK {
                self.flush_raw()?;
            }
        }
        Ok(())
    }

    fn flush_raw(&mut self) -> io::Result<()> {
        if self.raw.is_empty() {
            return Ok(());
        }
        self.out.write_all(b"R")?;
        let len = u32::try_from(self.raw.len()).expect("chunks are small");
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&self.raw)?;
        self.raw.clear();
        Ok(())
    }

    fn path(&mut self, tag: u8, path: &[u8]) -> io::Result<()> {
        self.flush_raw()?;
        let len = u16::try_from(path.len())
            .map_err(|_| io::Error::other("an entry path longer than 64 KiB"))?;
        self.out.write_all(&[tag])?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(path)
    }

    pub(crate) fn file(&mut self, path: &[u8], size: u64, crc32: u32) -> io::Result<()> {
        self.path(b'C', path)?;
        self.out.write_all(&size.to_le_bytes())?;
        self.out.write_all(&crc32.to_le_bytes())
    }

    pub(crate) fn name(&mut self, path: &[u8]) -> io::Result<()> {
        self.path(b'N', path)
    }

    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.flush_raw()?;
        self.out.write_all(b"E")?;
        self.out.finish()
    }
}

/// Reads a tar-split's records in order.
pub struct SplitReader<R: Read> {
    inner: GzDecoder<R>,
    done: bool,
}

impl<R: Read> SplitReader<R> {
    /// Reads the tar-split in `inner`.
    pub fn new(inner: R) -> SplitReader<R> {
        SplitReader {
            inner: GzDecoder::new(inner),
            done: false,
        }
    }

    fn bad(what: &str) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, format!("tar-split: {what}"))
    }

    fn path(&mut self) -> io::Result<Vec<u8>> {
        let mut len = [0u8; 2];
        self.inner.read_exact(&mut len)?;
        let mut path = vec![0u8; usize::from(u16::from_le_bytes(len))];
        self.inner.read_exact(&mut path)?;
        Ok(path)
    }

    /// The next record; `None` after the end record.
    pub fn next_record(&mut self) -> io::Result<Option<Record>> {
        if self.done {
            return Ok(None);
        }
        let mut tag = [0u8; 1];
        self.inner
            .read_exact(&mut tag)
            .map_err(|_| SplitReader::<R>::bad("ends without its end record"))?;
        match tag[0] {
            b'R' => {
                let mut len = [0u8; 4];
                self.inner.read_exact(&mut len)?;
                let len = u32::from_le_bytes(len) as usize;
                if len > RAW_CHUNK {
                    return Err(SplitReader::<R>::bad("a raw record over 64 KiB"));
                }
                let mut raw = vec![0u8; len];
                self.inner.read_exact(&mut raw)?;
                Ok(Some(Record::Raw(raw)))
            }
            b'C' => {
                let path = self.path()?;
                let mut size = [0u8; 8];
                self.inner.read_exact(&mut size)?;
                let mut crc = [0u8; 4];
                self.inner.read_exact(&mut crc)?;
                Ok(Some(Record::File {
                    path,
                    size: u64::from_le_bytes(size),
                    crc32: u32::from_le_bytes(crc),
                }))
            }
            b'N' => Ok(Some(Record::Name(self.path()?))),
            b'E' => {
                self.done = true;
                Ok(None)
            }
            other => Err(SplitReader::<R>::bad(&format!("unknown record {other:#x}"))),
        }
    }
}

/// What the recorder does with the bytes passing through.
enum Mode {
    /// Archive bytes: kept in the split.
    Raw,
    /// A file's contents: summed and counted, not kept.
    Payload {
        path: Vec<u8>,
        size: u64,
        left: u64,
        crc: u32,
    },
}

/// A reader between the (decompressed) layer and the tar reader: every
/// byte goes to the split, except the contents of the entry announced with
/// [`Recorder::payload`], which are only summed.
pub(crate) struct Recorder<R: Read, W: Write> {
    inner: R,
    split: SplitWriter<W>,
    mode: Mode,
    /// The first write error (a read cannot return it as ours).
    failed: Option<io::Error>,
}

impl<R: Read, W: Write> Recorder<R, W> {
    pub(crate) fn new(inner: R, split: SplitWriter<W>) -> Recorder<R, W> {
        Recorder {
            inner,
            split,
            mode: Mode::Raw,
            failed: None,
        }
    }

    /// The next `size` bytes are the contents of the file at `path`.
    pub(crate) fn payload(&mut self, path: Vec<u8>, size: u64) -> io::Result<()> {
        if size == 0 {
            return self.split.file(&path, 0, 0);
        }
        self.mode = Mode::Payload {
            path,
            size,
            left: size,
            crc: 0,
        };
        Ok(())
    }

    /// Another entry landed at `path`.
    pub(crate) fn name(&mut self, path: &[u8]) -> io::Result<()> {
        self.split.name(path)
    }

    /// The reader it wrapped, and the split's output.
    pub(crate) fn finish(self) -> io::Result<(R, W)> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if let Mode::Payload { path, .. } = &self.mode {
            return Err(io::Error::other(format!(
                "the layer ends inside {}",
                String::from_utf8_lossy(path)
            )));
        }
        Ok((self.inner, self.split.finish()?))
    }

    fn take(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match &mut self.mode {
                Mode::Raw => {
                    self.split.raw(bytes)?;
                    return Ok(());
                }
                Mode::Payload { left, crc, .. } => {
                    let n = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    *crc = zlib_rs::crc32::crc32(*crc, &bytes[..n]);
                    *left -= n as u64;
                    bytes = &bytes[n..];
                    if *left == 0 {
                        let Mode::Payload {
                            path, size, crc, ..
                        } = std::mem::replace(&mut self.mode, Mode::Raw)
                        else {
                            unreachable!("matched above")
                        };
                        self.split.file(&path, size, crc)?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl<R: Read, W: Write> Read for Recorder<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.take(&buf[..n]) {
            let message = e.to_string();
            self.failed.get_or_insert(e);
            return Err(io::Error::other(format!(
                "writing the tar-split: {message}"
            )));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut w = SplitWriter::new(Vec::new());
        w.raw(&vec![1u8; 100_000]).unwrap();
        w.file(b"etc/motd", 3, 7).unwrap();
        w.name(b"etc").unwrap();
        w.raw(b"tail").unwrap();
        let bytes = w.finish().unwrap();
        let mut r = SplitReader::new(&bytes[..]);
        let mut raw = Vec::new();
        let mut others = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            match rec {
                Record::Raw(b) => raw.extend(b),
                other => others.push(other),
            }
        }
        assert_eq!(raw.len(), 100_004);
        assert_eq!(
            others,
            [
                Record::File {
                    path: b"etc/motd".to_vec(),
                    size: 3,
                    crc32: 7
                },
                Record::Name(b"etc".to_vec())
            ]
        );
        // A truncated split is an error, not a short layer.
        let mut r = SplitReader::new(&bytes[..bytes.len() / 2]);
        let mut err = None;
        loop {
            match r.next_record() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        assert!(err.is_some());
    }
}
