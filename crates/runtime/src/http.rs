//! The little HTTP/1.1 the plugin protocols need, over unix sockets:
//! one message read (framed by length, by chunks, or by the end) with
//! bounded lines and bodies, and one written with its length.

use std::io::{BufRead, Read as _};

/// A message's head and body, as read off a connection.
pub(crate) struct Message {
    /// The request or status line.
    pub(crate) first: String,
    /// Headers other than the framing ones (length, chunking, connection).
    pub(crate) headers: Vec<String>,
    pub(crate) body: Vec<u8>,
    /// Whether the sender asked to close after it.
    pub(crate) close: bool,
}

pub(crate) const BODY_LIMIT: u64 = 16 << 20;
const LINE_LIMIT: u64 = 16 << 10;
/// One line of a head, at most 16 KiB.
fn line(r: &mut impl BufRead, out: &mut String) -> std::io::Result<usize> {
    let n = r.take(LINE_LIMIT).read_line(out)?;
    if n as u64 == LINE_LIMIT && !out.ends_with('\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "a line past 16 KiB",
        ));
    }
    Ok(n)
}

/// Reads one HTTP/1.1 message; `None` on a clean end before it starts.
/// `until_eof`: a response without a length runs to the end.
pub(crate) fn read_message(
    r: &mut impl BufRead,
    until_eof: bool,
) -> std::io::Result<Option<Message>> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
    let mut first = String::new();
    if line(r, &mut first)? == 0 {
        return Ok(None);
    }
    let first = first.trim_end().to_owned();
    let (mut headers, mut length, mut chunked, mut close) = (Vec::new(), None, false, false);
    loop {
        let mut h = String::new();
        if line(r, &mut h)? == 0 {
            return Err(bad("the connection ended inside the headers"));
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if headers.len() > 100 {
            return Err(bad("too many headers"));
        }
        let (k, v) = h.split_once(':').unwrap_or((h, ""));
        let v = v.trim();
        if k.eq_ignore_ascii_case("content-length") {
            length = Some(v.parse::<u64>().map_err(|_| bad("a bad Content-Length"))?);
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.eq_ignore_ascii_case("chunked");
        } else if k.eq_ignore_ascii_case("connection") {
            close = v.eq_ignore_ascii_case("close");
        } else {
            headers.push(h.to_owned());
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            line(r, &mut size)?;
            let size = u64::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad("a bad chunk size"))?;
            if (body.len() as u64).saturating_add(size) > BODY_LIMIT {
                return Err(bad("a body past 16 MiB"));
            }
            if size == 0 {
                // Trailers, up to the empty line.
                for _ in 0..100 {
                    let mut t = String::new();
                    if line(r, &mut t)? == 0 || t.trim_end().is_empty() {
                        break;
                    }
                }
                break;
            }
            r.take(size).read_to_end(&mut body)?;
            let mut crlf = String::new();
            line(r, &mut crlf)?;
        }
    } else if let Some(n) = length {
        if n > BODY_LIMIT {
            return Err(bad("a body past 16 MiB"));
        }
        r.take(n).read_to_end(&mut body)?;
        if body.len() as u64 != n {
            return Err(bad("the connection ended inside the body"));
        }
    } else if until_eof {
        r.take(BODY_LIMIT).read_to_end(&mut body)?;
        close = true;
    }
    Ok(Some(Message {
        first,
        headers,
        body,
        close,
    }))
}

pub(crate) fn write_message(
    w: &mut impl std::io::Write,
    m: &Message,
    close: bool,
) -> std::io::Result<()> {
    use std::fmt::Write as _;
    let mut head = format!("{}\r\n", m.first);
    for h in &m.headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    let _ = write!(head, "Content-Length: {}\r\n", m.body.len());
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(&m.body)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_messages_are_errors() {
        let long = format!("POST /{} HTTP/1.1\r\n\r\n", "a".repeat(20_000));
        assert!(read_message(&mut long.as_bytes(), false).is_err());
        let mut r: &[u8] =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n";
        assert!(read_message(&mut r, true).is_err());
        let mut r: &[u8] = b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort";
        assert!(read_message(&mut r, false).is_err());
        let mut r: &[u8] = b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n";
        assert!(read_message(&mut r, false).is_err());
        let mut r: &[u8] = b"POST / HTTP/1.1\r\nHost: a\r\n";
        assert!(read_message(&mut r, false).is_err());
        let mut r: &[u8] = b"";
        assert!(read_message(&mut r, false).unwrap().is_none());
    }
}
