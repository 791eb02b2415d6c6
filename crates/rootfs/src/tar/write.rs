//! The tar writer: ustar, with PAX records where a value does not fit.

use std::io::{self, Read, Write};

use super::{Header, Kind};

const BLOCK: usize = 512;
/// The largest value of an 11-digit octal field (size, mtime).
const MAX_OCTAL_11: u64 = 0o777_7777_7777;
/// The largest value of a 7-digit octal field (uid, gid).
const MAX_OCTAL_7: u64 = 0o777_7777;

/// Writes a tar stream. Output depends only on the headers and data given:
/// no user or group names, no time of writing, fixed PAX header names.
pub struct Writer<W: Write> {
    inner: W,
    /// For copying data: io::copy's 8 KiB would mean many small writes.
    buf: Vec<u8>,
}

impl<W: Write> Writer<W> {
    /// A writer into `inner`.
    pub fn new(inner: W) -> Writer<W> {
        Writer {
            inner,
            buf: Vec::new(),
        }
    }

    /// Appends one entry. `data` must give exactly `header.size` bytes for a
    /// regular file; it is not read for other kinds.
    pub fn append(&mut self, header: &Header, data: &mut dyn Read) -> io::Result<()> {
        let size = self.write_head(header)?;
        if size > 0 {
            let copied = copy(&mut data.take(size), &mut self.inner, &mut self.buf)?;
            if copied != size {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{}: data is {copied} bytes, header says {size}",
                        header.display_path()
                    ),
                ));
            }
            self.pad(size)?;
        }
        Ok(())
    }

    /// Writes an entry's PAX records and header block; returns the data size.
    fn write_head(&mut self, header: &Header) -> io::Result<u64> {
        let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let (name, prefix) = if let Some(np) = split_name(&header.path) {
            np
        } else {
            pax.push((b"path".to_vec(), header.path.clone()));
            (truncated(&header.path, 100), &b""[..])
        };
        if header.link.len() > 100 {
            pax.push((b"linkpath".to_vec(), header.link.clone()));
        }
        let size = if header.kind.has_data() {
            header.size
        } else {
            0
        };

        if size > MAX_OCTAL_11 {
            pax.push((b"size".to_vec(), size.to_string().into_bytes()));
        }
        if header.uid > MAX_OCTAL_7 {
            pax.push((b"uid".to_vec(), header.uid.to_string().into_bytes()));
        }
        if header.gid > MAX_OCTAL_7 {
            pax.push((b"gid".to_vec(), header.gid.to_string().into_bytes()));
        }
        let mtime_fits = u64::try_from(header.mtime).is_ok_and(|m| m <= MAX_OCTAL_11);
        if !mtime_fits || header.mtime_nsec != 0 {
            let mut v = header.mtime.to_string();
            if header.mtime_nsec != 0 {
                v = if header.mtime >= 0 {
                    format!("{}.{:09}", header.mtime, header.mtime_nsec)
                } else {
                    // (-2 s, +0.5 s) is -1.5 s: PAX writes the signed value.
                    let secs = header.mtime + 1;
                    format!(
                        "-{}.{:09}",
                        secs.unsigned_abs(),
                        1_000_000_000 - header.mtime_nsec
                    )
                };
            }
            pax.push((b"mtime".to_vec(), v.into_bytes()));
        }
        for (k, v) in &header.xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(k);
            pax.push((key, v.clone()));
        }
        if !pax.is_empty() {
            let records = pax_records(&pax);
            let mut ph = Header::new(Kind::File, b"");
            ph.size = records.len() as u64;
            let mut pname = b"PaxHeaders/".to_vec();
            pname.extend_from_slice(truncated(last_component(&header.path), 88));
            let block = encode(
                &ph,
                truncated(&pname, 100),
                b"",
                b'x',
                records.len() as u64,
                0,
            );
            self.inner.write_all(&block)?;
            self.inner.write_all(&records)?;
            self.pad(records.len() as u64)?;
        }
        let mtime = if mtime_fits {
            header.mtime.cast_unsigned()
        } else {
            0
        };
        let block = encode(
            header,
            name,
            prefix,
            header.kind.flag(),
            size.min(MAX_OCTAL_11),
            mtime,
        );
        self.inner.write_all(&block)?;
        Ok(size)
    }

    /// Appends a regular file entry whose `header.size` data bytes `data`
    /// writes straight into the inner writer (a kernel copy into the file
    /// behind it, say). It must write exactly that many bytes.
    pub fn append_with(
        &mut self,
        header: &Header,
        data: impl FnOnce(&mut W) -> io::Result<()>,
    ) -> io::Result<()> {
        let size = self.write_head(header)?;
        data(&mut self.inner)?;
        self.pad(size)
    }

    /// Writes the two end-of-archive blocks and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.write_all(&[0u8; 2 * BLOCK])?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = usize::try_from(size % BLOCK as u64).unwrap_or(0);
        if rem != 0 {
            self.inner.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }
}

/// Copies with a 256 KiB buffer, allocated on first use.
fn copy(from: &mut dyn Read, to: &mut dyn Write, buf: &mut Vec<u8>) -> io::Result<u64> {
    if buf.is_empty() {
        buf.resize(256 << 10, 0);
    }
    let mut total = 0u64;
    loop {
        let n = match from.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
}

fn last_component(p: &[u8]) -> &[u8] {
    let trimmed = p.strip_suffix(b"/").unwrap_or(p);
    match trimmed.iter().rposition(|&c| c == b'/') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    }
}

fn truncated(b: &[u8], n: usize) -> &[u8] {
    &b[..b.len().min(n)]
}

/// Fits a path into ustar's name (100) and prefix (155), split at a '/'.
fn split_name(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.len() <= 100 {
        return Some((path, b""));
    }
    if path.len() > 256 {
        return None;
    }
    // The prefix must end before a '/' and the name must fit in 100 bytes.
    (0..path.len())
        .rev()
        .filter(|&i| path[i] == b'/')
        .find_map(|i| {
            let (prefix, name) = (&path[..i], &path[i + 1..]);
            (prefix.len() <= 155 && name.len() <= 100 && !name.is_empty()).then_some((name, prefix))
        })
}

fn pax_records(records: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        // LEN counts itself: find the length whose decimal width is stable.
        let body = k.len() + v.len() + 3; // ' ', '=', '\n'
        let mut len = body + 1;
        while len != body + len.to_string().len() {
            len = body + len.to_string().len();
        }
        out.extend_from_slice(len.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(k);
        out.push(b'=');
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out
}

fn octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    let s = s.as_bytes();
    let start = s.len().saturating_sub(digits);
    field[..digits].copy_from_slice(&s[start..]);
    field[digits] = 0;
}

fn encode(h: &Header, name: &[u8], prefix: &[u8], flag: u8, size: u64, mtime: u64) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    b[..name.len()].copy_from_slice(name);
    octal(&mut b[100..108], u64::from(h.mode & 0o7777));
    octal(&mut b[108..116], h.uid.min(0o777_7777));
    octal(&mut b[116..124], h.gid.min(0o777_7777));
    octal(&mut b[124..136], size);
    octal(&mut b[136..148], mtime);
    b[156] = flag;
    let link = truncated(&h.link, 100);
    b[157..157 + link.len()].copy_from_slice(link);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    if matches!(h.kind, Kind::CharDevice | Kind::BlockDevice) {
        octal(&mut b[329..337], u64::from(h.dev_major));
        octal(&mut b[337..345], u64::from(h.dev_minor));
    }
    b[345..345 + prefix.len()].copy_from_slice(prefix);
    b[148..156].copy_from_slice(b"        ");
    let sum: u64 = b.iter().map(|&c| u64::from(c)).sum();
    octal(&mut b[148..155], sum);
    b[155] = b' ';
    b
}
