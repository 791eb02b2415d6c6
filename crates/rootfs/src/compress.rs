//! Deterministic, multi-threaded layer compression.
//!
//! gzip is compressed like pigz: the stream is cut into fixed 1 MiB blocks,
//! each deflated on its own thread with the previous 32 KiB as dictionary
//! and ended with a sync flush, and the pieces are joined in order under one
//! gzip header (Go's: no name, no time, OS 255) and trailer. Block edges
//! depend only on byte offsets, so the output depends only on the input and
//! the level, never on the thread count. zstd uses libzstd's workers, whose
//! output is the same for any number of workers above zero.

use std::io::{self, Write};
use std::thread;

use flate2::{Compress, Crc, FlushCompress};

/// Uncompressed bytes per gzip block.
const BLOCK: usize = 1 << 20;
/// The deflate window: the dictionary each block gets from the previous one.
const WINDOW: usize = 32 << 10;

/// gzip, compressed on all cores, deterministic for a given level.
pub struct ParallelGzip<W: Write> {
    out: W,
    level: u32,
    threads: usize,
    /// Blocks waiting for a batch; the last one is being filled.
    pending: Vec<Vec<u8>>,
    /// The tail of the last compressed block: the next block's dictionary.
    dictionary: Vec<u8>,
    crc: Crc,
    header_written: bool,
}

impl<W: Write> ParallelGzip<W> {
    /// A writer at `level` (0–9) on `threads` threads (at least one).
    pub fn new(out: W, level: u32, threads: usize) -> ParallelGzip<W> {
        ParallelGzip {
            out,
            level: level.min(9),
            threads: threads.max(1),
            pending: vec![Vec::with_capacity(BLOCK)],
            dictionary: Vec::new(),
            crc: Crc::new(),
            header_written: false,
        }
    }

    /// Compresses every full block waiting, in parallel, and writes them.
    fn drain(&mut self, finish: bool) -> io::Result<()> {
        if !self.header_written {
            self.out
                .write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
            self.header_written = true;
        }
        let last_open = !finish;
        let ready = if last_open {
            self.pending.len() - 1
        } else {
            self.pending.len()
        };
        if ready == 0 {
            return Ok(());
        }
        let blocks: Vec<Vec<u8>> = self.pending.drain(..ready).collect();
        if self.pending.is_empty() {
            self.pending.push(Vec::with_capacity(BLOCK));
        }
        for b in &blocks {
            self.crc.update(b);
        }
        // Dictionaries: the previous block's tail, known before compressing.
        let mut dicts = Vec::with_capacity(blocks.len());
        let mut prev = std::mem::take(&mut self.dictionary);
        for b in &blocks {
            dicts.push(prev);
            prev = b[b.len().saturating_sub(WINDOW)..].to_vec();
        }
        self.dictionary = prev;
        let level = self.level;
        let n = blocks.len();
        let per = n.div_ceil(self.threads);
        let mut outputs: Vec<io::Result<Vec<u8>>> = Vec::with_capacity(n);
        thread::scope(|s| {
            let handles: Vec<_> = blocks
                .chunks(per)
                .zip(dicts.chunks(per))
                .enumerate()
                .map(|(chunk_no, (bs, ds))| {
                    s.spawn(move || {
                        bs.iter()
                            .zip(ds)
                            .enumerate()
                            .map(|(i, (b, d))| {
                                let is_last = finish && chunk_no * per + i == n - 1;
                                deflate_block(b, d, level, is_last)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for h in handles {
                outputs.extend(h.join().expect("a compression thread panicked"));
            }
        });
        for o in outputs {
            self.out.write_all(&o?)?;
        }
        Ok(())
    }

    /// Writes the last blocks and the trailer; returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.drain(true)?;
        let crc = self.crc.sum();
        let len = self.crc.amount();
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Raw deflate of one block: sync-flushed (byte-aligned, joinable), or
/// finished for the last block.
fn deflate_block(block: &[u8], dictionary: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(flate2::Compression::new(level), false);
    if !dictionary.is_empty() {
        c.set_dictionary(dictionary).map_err(io::Error::other)?;
    }
    let mut out = Vec::with_capacity(block.len() / 2 + 1024);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    loop {
        let consumed = usize::try_from(c.total_in()).expect("block fits in memory");
        let status = c
            .compress_vec(&block[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = usize::try_from(c.total_in()).expect("block fits in memory") == block.len();
        // zlib's rule: a flush is complete when it left output room unused;
        // a finish, when it says the stream ended.
        let done = if last {
            status == flate2::Status::StreamEnd
        } else {
            all_in && out.len() < out.capacity()
        };
        if done {
            break;
        }
        out.reserve(out.capacity().max(64 << 10));
    }
    Ok(out)
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let n = buf.len();
        while !buf.is_empty() {
            let cur = self
                .pending
                .last_mut()
                .expect("there is always an open block");
            let room = BLOCK - cur.len();
            let take = room.min(buf.len());
            cur.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if cur.len() == BLOCK {
                self.pending.push(Vec::with_capacity(BLOCK));
                if self.pending.len() > self.threads * 2 {
                    self.drain(false)?;
                }
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A zstd encoder with `threads` workers (at least one, so that the output
/// does not depend on the count).
pub fn zstd_encoder<W: Write>(
    out: W,
    level: i32,
    threads: usize,
) -> io::Result<zstd::stream::write::Encoder<'static, W>> {
    let mut e = zstd::stream::write::Encoder::new(out, level)?;
    e.multithread(u32::try_from(threads.max(1)).unwrap_or(1))?;
    e.include_checksum(true)?;
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gz(data: &[u8], threads: usize) -> Vec<u8> {
        let mut w = ParallelGzip::new(Vec::new(), 6, threads);
        for chunk in data.chunks(70_000) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn round_trips_and_does_not_depend_on_threads() {
        let mut data = Vec::new();
        for i in 0..(5 * BLOCK + 12345) {
            data.push(u8::try_from((i * 31 + i / 1000) % 251).unwrap());
        }
        let one = gz(&data, 1);
        assert_eq!(one, gz(&data, 2));
        assert_eq!(one, gz(&data, 5));
        assert_eq!(&one[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&one[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        for empty_or_small in [&b""[..], b"x"] {
            let z = gz(empty_or_small, 2);
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&z[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, empty_or_small);
        }
    }

    #[test]
    fn zstd_is_deterministic_across_worker_counts() {
        let data: Vec<u8> = (0..3_000_000u32)
            .map(|i| u8::try_from(i % 97).unwrap())
            .collect();
        let enc = |t| {
            let mut e = zstd_encoder(Vec::new(), 3, t).unwrap();
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        assert_eq!(enc(1), enc(2));
        assert_eq!(zstd::decode_all(&enc(2)[..]).unwrap(), data);
    }
}
