//! Layer decompression: detected by magic bytes, bounded.

use std::io::{self, Cursor, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use pluginctl_oci::{Compression, MediaType};

use crate::{Error, Result};

/// Bounds on decompression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Decompressed bytes in all.
    pub max_bytes: u64,
    /// Decompressed bytes per compressed byte, checked once past
    /// `ratio_grace` bytes of output.
    pub max_ratio: u64,
    /// Output below which the ratio is not checked.
    pub ratio_grace: u64,
    /// log2 of the largest zstd window accepted (27 = 128 MiB).
    pub zstd_window_log_max: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: 256 << 30,
            max_ratio: 4096,
            ratio_grace: 64 << 20,
            zstd_window_log_max: 27,
        }
    }
}

/// The compression the first bytes of a stream show.
///
/// gzip (`1f 8b`) and zstd (`28 b5 2f fd`) by magic; plain tar when the
/// first 512 bytes are a header with a valid checksum, a zero block, or the
/// stream is empty. Anything else is `None`.
pub fn detect(prefix: &[u8]) -> Option<Compression> {
    if prefix.starts_with(&[0x1f, 0x8b]) {
        return Some(Compression::Gzip);
    }
    if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Some(Compression::Zstd);
    }
    if prefix.is_empty() {
        return Some(Compression::None);
    }
    if let Some(block) = prefix.first_chunk::<512>()
        && (block.iter().all(|&b| b == 0) || crate::tar::is_header(block))
    {
        return Some(Compression::None);
    }
    None
}

/// Checks a layer media type and returns the compression it declares.
pub fn for_media_type(mt: &MediaType) -> Result<Compression> {
    mt.layer_compression()
        .ok_or_else(|| Error::UnsupportedMediaType(mt.to_string()))
}

/// Wraps `input` in the decoder its first bytes call for, bounded by
/// `limits`. The returned reader yields tar bytes.
pub fn decompress<'a, R: Read + Send + 'a>(
    input: R,
    limits: &Limits,
) -> Result<Box<dyn Read + Send + 'a>> {
    Ok(decompress_detected(input, limits)?.0)
}

/// Like [`decompress`], and says which compression it found.
pub fn decompress_detected<'a, R: Read + Send + 'a>(
    mut input: R,
    limits: &Limits,
) -> Result<(Box<dyn Read + Send + 'a>, Compression)> {
    let mut prefix = Vec::with_capacity(512);
    (&mut input)
        .take(512)
        .read_to_end(&mut prefix)
        .map_err(Error::Read)?;
    let kind = detect(&prefix).ok_or_else(|| {
        let shown: Vec<String> = prefix.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Error::UnknownCompression(shown.join(" "))
    })?;
    let consumed = Arc::new(AtomicU64::new(0));
    let counted = Counting {
        inner: Cursor::new(prefix).chain(input),
        count: Arc::clone(&consumed),
    };
    let decoded: Box<dyn Read + Send + 'a> = match kind {
        Compression::None => Box::new(counted),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(
            io::BufReader::with_capacity(256 << 10, counted),
        )),
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::new(counted).map_err(Error::Read)?;
            d.window_log_max(limits.zstd_window_log_max)
                .map_err(Error::Read)?;
            Box::new(d)
        }
    };
    let bounded = Bounded {
        inner: decoded,
        out: 0,
        consumed,
        limits: *limits,
        check_ratio: kind != Compression::None,
    };
    Ok((Box::new(bounded), kind))
}

struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

struct Bounded<R> {
    inner: R,
    out: u64,
    consumed: Arc<AtomicU64>,
    limits: Limits,
    check_ratio: bool,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).map_err(|e| {
            // zstd says "Frame requires too much memory" for a big window.
            if e.to_string().contains("too much memory") {
                io::Error::other(Error::Limit(format!(
                    "zstd window is larger than 2^{} bytes",
                    self.limits.zstd_window_log_max
                )))
            } else {
                e
            }
        })?;
        self.out += n as u64;
        if self.out > self.limits.max_bytes {
            return Err(io::Error::other(Error::Limit(format!(
                "decompressed layer is larger than {} bytes",
                self.limits.max_bytes
            ))));
        }
        if self.check_ratio && self.out > self.limits.ratio_grace {
            let consumed = self.consumed.load(Ordering::Relaxed).max(1);
            if self.out / consumed > self.limits.max_ratio {
                return Err(io::Error::other(Error::Limit(format!(
                    "compression ratio above {}:1 ({} bytes from {consumed})",
                    self.limits.max_ratio, self.out
                ))));
            }
        }
        Ok(n)
    }
}
