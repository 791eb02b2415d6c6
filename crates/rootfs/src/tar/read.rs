//! The streaming tar reader.

use std::io::{self, Read};

use super::{Header, Kind, Limits};
use crate::{Error, Result};

const BLOCK: usize = 512;
/// Extended attributes one entry may carry.
const MAX_XATTRS: usize = 128;
/// Bytes of names and values of one entry's extended attributes.
const MAX_XATTR_BYTES: usize = 64 << 10;

/// A streaming tar reader: [`Reader::next_header`] gives each entry's header, and
/// [`Reader::data`] its bytes. Unread data is skipped by the next call.
pub struct Reader<R> {
    inner: R,
    limits: Limits,
    /// Data bytes of the current entry not yet read.
    remaining: u64,
    /// Padding after the current entry's data.
    padding: u64,
    /// Archive bytes consumed so far.
    offset: u64,
    entries: u64,
    done: bool,
    /// Scratch space for skipping data, allocated on first use.
    skip_buf: Vec<u8>,
    /// Moves the input forward without reading, when it can seek.
    seek: Option<fn(&mut R, u64) -> io::Result<()>>,
}

/// PAX records that override header fields.
#[derive(Default, Clone)]
struct Pax {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<(i64, u32)>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl<R: Read> Reader<R> {
    /// A reader with the given limits.
    pub fn new(inner: R, limits: Limits) -> Reader<R> {
        Reader {
            inner,
            limits,
            remaining: 0,
            padding: 0,
            offset: 0,
            entries: 0,
            done: false,
            skip_buf: Vec::new(),
            seek: None,
        }
    }

    /// Archive bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The underlying reader, mutably (for a caller that reads the current
    /// entry's data some other way and lets the next call seek past it).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The underlying reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Reads whatever follows the end of the archive (block padding), so
    /// that a wrapping reader sees its end of input and checks what it
    /// checks there (a digest, a compressed stream's trailer).
    pub fn drain(self) -> Result<u64> {
        let mut inner = self.inner;
        io::copy(&mut inner, &mut io::sink()).map_err(Error::Read)
    }

    /// The next entry's header, or `None` at the end of the archive.
    pub fn next_header(&mut self) -> Result<Option<Header>> {
        if self.done {
            return Ok(None);
        }
        self.skip_rest()?;
        let mut local = Pax::default();
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        loop {
            let mut block = [0u8; BLOCK];
            let at = self.offset;
            if !self.read_block(&mut block)? {
                // End of input at a block boundary: an archive without its
                // end blocks, as Go's reader accepts.
                self.done = true;
                return Ok(None);
            }
            if block.iter().all(|&b| b == 0) {
                let mut second = [0u8; BLOCK];
                if self.read_block(&mut second)? && second.iter().any(|&b| b != 0) {
                    return Err(Error::Tar {
                        offset: self.offset - BLOCK as u64,
                        reason: "data after an end-of-archive block".to_owned(),
                    });
                }
                self.done = true;
                return Ok(None);
            }
            let raw =
                RawHeader::parse(&block).map_err(|reason| Error::Tar { offset: at, reason })?;
            match raw.flag {
                b'L' | b'K' | b'x' | b'g' => {
                    if raw.size > self.limits.max_extension {
                        return Err(Error::Limit(format!(
                            "extension header of {} bytes is over the limit of {}",
                            raw.size, self.limits.max_extension
                        )));
                    }
                    let data = self.read_extension(raw.size)?;
                    match raw.flag {
                        b'L' => long_name = Some(trim_nul(&data).to_vec()),
                        b'K' => long_link = Some(trim_nul(&data).to_vec()),
                        b'x' => parse_pax(&data, &mut local)
                            .map_err(|reason| Error::Tar { offset: at, reason })?,
                        _ => {
                            // Docker ignores global headers; so do we,
                            // once they parse.
                            let mut g = Pax::default();
                            parse_pax(&data, &mut g)
                                .map_err(|reason| Error::Tar { offset: at, reason })?;
                            drop(g);
                        }
                    }
                    continue;
                }
                _ => {}
            }
            let kind = match raw.flag {
                b'0' | 0 | b'7' if raw.name.ends_with(b"/") && raw.flag == 0 => Kind::Dir,
                b'0' | 0 | b'7' => Kind::File,
                b'1' => Kind::Hardlink,
                b'2' => Kind::Symlink,
                b'3' => Kind::CharDevice,
                b'4' => Kind::BlockDevice,
                b'5' => Kind::Dir,
                b'6' => Kind::Fifo,
                b'S' => {
                    return Err(Error::Tar {
                        offset: at,
                        reason: format!(
                            "{:?} is a GNU sparse file, which is not supported",
                            lossy(&raw.name)
                        ),
                    });
                }
                other => {
                    return Err(Error::Tar {
                        offset: at,
                        reason: format!(
                            "{:?} has unsupported entry type {:?}",
                            lossy(&raw.name),
                            char::from(other)
                        ),
                    });
                }
            };
            self.entries += 1;
            if self.entries > self.limits.max_entries {
                return Err(Error::Limit(format!(
                    "archive has more than {} entries",
                    self.limits.max_entries
                )));
            }
            let path = local.path.clone().or(long_name.take()).unwrap_or(raw.name);
            let link = local.link.clone().or(long_link.take()).unwrap_or(raw.link);
            for (what, v) in [("name", &path), ("link target", &link)] {
                if v.len() > self.limits.max_path {
                    return Err(Error::Limit(format!(
                        "entry {what} of {} bytes is over the limit of {}",
                        v.len(),
                        self.limits.max_path
                    )));
                }
                if v.contains(&0) {
                    return Err(Error::Tar {
                        offset: at,
                        reason: format!("entry {what} {:?} contains a NUL byte", lossy(v)),
                    });
                }
            }
            let size = local.size.unwrap_or(raw.size);
            if size > i64::MAX as u64 {
                return Err(Error::Tar {
                    offset: at,
                    reason: format!("entry size {size} is out of range"),
                });
            }
            let (mtime, mtime_nsec) = local.mtime.unwrap_or((raw.mtime, 0));
            let xattrs = local.xattrs;
            let header = Header {
                path,
                kind,
                mode: raw.mode & 0o7777,
                uid: local.uid.unwrap_or(raw.uid),
                gid: local.gid.unwrap_or(raw.gid),
                size: if kind.has_data() { size } else { 0 },
                mtime,
                mtime_nsec,
                link,
                dev_major: raw.dev_major,
                dev_minor: raw.dev_minor,
                xattrs,
            };
            // Go's rule: only regular files have data, whatever `size` says.
            self.remaining = header.size;
            self.padding = pad(header.size);
            return Ok(Some(header));
        }
    }

    /// The current entry's data; reading past its size returns EOF.
    pub fn data(&mut self) -> Data<'_, R> {
        Data { reader: self }
    }

    fn skip_rest(&mut self) -> Result<()> {
        let mut left = self.remaining + self.padding;
        if let Some(seek) = self.seek
            && left > 0
        {
            seek(&mut self.inner, left).map_err(Error::Read)?;
            self.count(left)?;
            self.remaining = 0;
            self.padding = 0;
            return Ok(());
        }
        // Skipped data is read (the input may not seek, and wrappers below
        // may be hashing it), in large reads: io::copy's 8 KiB would mean a
        // hundred thousand calls per GiB.
        if left > 0 && self.skip_buf.is_empty() {
            self.skip_buf.resize(256 << 10, 0);
        }
        while left > 0 {
            let want = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(self.skip_buf.len());
            let n = match self.inner.read(&mut self.skip_buf[..want]) {
                Ok(0) => return Err(self.truncated()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Read(e)),
            };
            self.count(n as u64)?;
            left -= n as u64;
        }
        self.remaining = 0;
        self.padding = 0;
        Ok(())
    }

    fn read_extension(&mut self, size: u64) -> Result<Vec<u8>> {
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        let want = size + pad(size);
        let got = (&mut self.inner)
            .take(want)
            .read_to_end(&mut data)
            .map_err(Error::Read)?;
        self.count(got as u64)?;
        if (got as u64) < want {
            return Err(self.truncated());
        }
        data.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        Ok(data)
    }

    /// Reads one block; `false` at a clean end of input.
    fn read_block(&mut self, block: &mut [u8; BLOCK]) -> Result<bool> {
        let mut n = 0;
        while n < BLOCK {
            match self.inner.read(&mut block[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::Read(e)),
            }
        }
        self.count(n as u64)?;
        match n {
            0 => Ok(false),
            BLOCK => Ok(true),
            _ => Err(self.truncated()),
        }
    }

    fn count(&mut self, n: u64) -> Result<()> {
        self.offset += n;
        if self.offset > self.limits.max_bytes {
            return Err(Error::Limit(format!(
                "archive is larger than {} bytes",
                self.limits.max_bytes
            )));
        }
        Ok(())
    }

    fn truncated(&self) -> Error {
        Error::Tar {
            offset: self.offset,
            reason: "archive is truncated".to_owned(),
        }
    }
}

impl<R: io::Read + io::Seek> Reader<R> {
    /// A reader that seeks over data it is not asked for instead of reading
    /// it: for a plain tar in a file, reading headers only costs a few
    /// kilobytes per entry instead of the whole archive. Only for input that
    /// nothing below needs to see in full (no digest being computed).
    pub fn seeking(inner: R, limits: Limits) -> Reader<R> {
        let mut r = Reader::new(inner, limits);
        r.seek = Some(|inner: &mut R, n: u64| {
            let n = i64::try_from(n).map_err(io::Error::other)?;
            inner.seek_relative(n)
        });
        r
    }
}

/// The data of the current entry, as a `Read`.
pub struct Data<'a, R> {
    reader: &'a mut Reader<R>,
}

impl<R: Read> Read for Data<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = &mut *self.reader;
        if r.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = usize::try_from(r.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = r.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("archive is truncated at byte {}", r.offset),
            ));
        }
        r.remaining -= n as u64;
        r.count(n as u64).map_err(io::Error::other)?;
        Ok(n)
    }
}

fn pad(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn trim_nul(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}

struct RawHeader {
    name: Vec<u8>,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: i64,
    flag: u8,
    link: Vec<u8>,
    dev_major: u32,
    dev_minor: u32,
}

impl RawHeader {
    fn parse(b: &[u8; BLOCK]) -> std::result::Result<RawHeader, String> {
        let stored = parse_number(&b[148..156]).ok_or("invalid header checksum field")?;
        let (unsigned, signed) = checksums(b);
        if stored != unsigned && stored != signed {
            return Err(format!(
                "header checksum mismatch (stored {stored}, computed {unsigned}): not a tar archive, or a corrupt one"
            ));
        }
        let field =
            |range: std::ops::Range<usize>, what: &str| -> std::result::Result<i64, String> {
                parse_number(&b[range]).ok_or_else(|| format!("invalid {what} field"))
            };
        let unsigned_field =
            |range: std::ops::Range<usize>, what: &str| -> std::result::Result<u64, String> {
                u64::try_from(field(range, what)?).map_err(|_| format!("negative {what}"))
            };
        let ustar = &b[257..263] == b"ustar\0";
        let mut name = trim_nul(&b[0..100]).to_vec();
        if ustar {
            let prefix = trim_nul(&b[345..500]);
            if !prefix.is_empty() {
                let mut full = prefix.to_vec();
                full.push(b'/');
                full.extend_from_slice(&name);
                name = full;
            }
        }
        let small =
            |v: u64, what: &str| u32::try_from(v).map_err(|_| format!("{what} is out of range"));
        Ok(RawHeader {
            mode: small(unsigned_field(100..108, "mode")?, "mode")?,
            uid: unsigned_field(108..116, "uid")?,
            gid: unsigned_field(116..124, "gid")?,
            size: unsigned_field(124..136, "size")?,
            mtime: field(136..148, "mtime")?,
            flag: b[156],
            link: trim_nul(&b[157..257]).to_vec(),
            dev_major: small(unsigned_field(329..337, "devmajor")?, "devmajor")?,
            dev_minor: small(unsigned_field(337..345, "devminor")?, "devminor")?,
            name,
        })
    }
}

/// A header's checksum as the sum of its bytes (the checksum field counted
/// as spaces), unsigned and, as old tars wrote it, signed.
fn checksums(b: &[u8; BLOCK]) -> (i64, i64) {
    let mut unsigned = 0i64;
    let mut signed = 0i64;
    for (i, &c) in b.iter().enumerate() {
        let (u, s) = if (148..156).contains(&i) {
            (32, 32)
        } else {
            (i64::from(c), i64::from(c.cast_signed()))
        };
        unsigned += u;
        signed += s;
    }
    (unsigned, signed)
}

/// Whether `block` is a tar header with a valid checksum.
pub(crate) fn is_header(block: &[u8; BLOCK]) -> bool {
    let (unsigned, signed) = checksums(block);
    parse_number(&block[148..156]).is_some_and(|stored| stored == unsigned || stored == signed)
}

/// Octal (NUL/space terminated, possibly empty) or base-256 (high bit set).
fn parse_number(f: &[u8]) -> Option<i64> {
    if f.first().is_some_and(|&c| c & 0x80 != 0) {
        let negative = f[0] & 0x40 != 0;
        let mut v: i64 = if negative { -1 } else { 0 };
        for (i, &c) in f.iter().enumerate() {
            let c = if i == 0 {
                c & 0x7f | if negative { 0x80 } else { 0 }
            } else {
                c
            };
            v = v.checked_mul(256)?;
            v |= i64::from(c);
        }
        return Some(v);
    }
    let s: Vec<u8> = f
        .iter()
        .copied()
        .skip_while(|&c| c == b' ' || c == 0)
        .take_while(|&c| c != b' ' && c != 0)
        .collect();
    if s.is_empty() {
        return Some(0);
    }
    if !s.iter().all(|c| (b'0'..=b'7').contains(c)) {
        return None;
    }
    i64::from_str_radix(std::str::from_utf8(&s).ok()?, 8).ok()
}

/// Parses PAX records `LEN KEY=VALUE\n` into `pax`.
fn parse_pax(mut data: &[u8], pax: &mut Pax) -> std::result::Result<(), String> {
    while !data.is_empty() {
        let sp = data
            .iter()
            .position(|&c| c == b' ')
            .ok_or("malformed PAX record: no length")?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("malformed PAX record length")?;
        if len <= sp + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err("malformed PAX record".to_owned());
        }
        let record = &data[sp + 1..len - 1];
        data = &data[len..];
        let eq = record
            .iter()
            .position(|&c| c == b'=')
            .ok_or("malformed PAX record: no '='")?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        let number = |what: &str| -> std::result::Result<u64, String> {
            std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("invalid PAX {what} {:?}", lossy(value)))
        };
        match key {
            b"path" => pax.path = Some(value.to_vec()),
            b"linkpath" => pax.link = Some(value.to_vec()),
            b"size" => pax.size = Some(number("size")?),
            b"uid" => pax.uid = Some(number("uid")?),
            b"gid" => pax.gid = Some(number("gid")?),
            b"mtime" => {
                let t = parse_pax_time(value)
                    .ok_or_else(|| format!("invalid PAX mtime {:?}", lossy(value)))?;
                pax.mtime = Some(t);
            }
            k if k.starts_with(b"GNU.sparse.") => {
                return Err("GNU sparse files are not supported".to_owned());
            }
            k => {
                if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                    pax.xattrs.retain(|(n, _)| n != name);
                    // The kernel's own bounds: a few hundred names, 64 KiB.
                    let bytes: usize = pax.xattrs.iter().map(|(n, v)| n.len() + v.len()).sum();
                    if pax.xattrs.len() >= MAX_XATTRS
                        || bytes + name.len() + value.len() > MAX_XATTR_BYTES
                    {
                        return Err(format!(
                            "more than {MAX_XATTRS} extended attributes or {MAX_XATTR_BYTES} bytes of them"
                        ));
                    }
                    pax.xattrs.push((name.to_vec(), value.to_vec()));
                }
            }
        }
    }
    Ok(())
}

/// `SECONDS[.FRACTION]`, possibly negative.
fn parse_pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let nsec: u32 = digits.parse().ok()?;
    if s.starts_with('-') && nsec > 0 {
        // "-1.5" is 1.5 s before the epoch: -2 s plus 0.5 s.
        return Some((secs - 1, 1_000_000_000 - nsec));
    }
    Some((secs, nsec))
}
