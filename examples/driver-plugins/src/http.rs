//! HTTP/1.1 framing: reading a request (`Content-Length` or chunked
//! body), writing a JSON or streamed (chunked) response.

use crate::{MAX_BODY, PLUGIN_JSON, Request, Response};
use std::io::{self, BufRead, BufWriter, Read, Write};

/// The longest request or header line read.
const MAX_LINE: u64 = 64 << 10;

/// Why no request was read.
pub(crate) enum ReadError {
    /// The peer went away (or the read failed): nothing to answer.
    Closed,
    /// A malformed request: answer this status and message, then close.
    Bad(u16, &'static str),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        Self::Closed
    }
}

/// A request and how to answer it.
pub(crate) struct Incoming {
    pub(crate) request: Request,
    pub(crate) close: bool,
    pub(crate) http11: bool,
}

/// One line without its line ending; `None` at the end of the stream.
fn read_line(reader: &mut impl BufRead) -> Result<Option<String>, ReadError> {
    let mut line = String::new();
    if Read::take(&mut *reader, MAX_LINE).read_line(&mut line)? == 0 {
        return Ok(None);
    }
    if !line.ends_with('\n') {
        return Err(ReadError::Bad(431, "line too long"));
    }
    line.truncate(line.trim_end_matches(['\r', '\n']).len());
    Ok(Some(line))
}

pub(crate) fn read_request(
    reader: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<Incoming, ReadError> {
    let mut line = String::new();
    while line.is_empty() {
        line = read_line(reader)?.ok_or(ReadError::Closed)?;
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad(400, "malformed request line"));
    };
    let http11 = version != "HTTP/1.0";
    let mut close = !http11;
    let (mut length, mut chunked, mut expect) = (None, false, false);
    loop {
        let header = read_line(reader)?.ok_or(ReadError::Closed)?;
        if header.is_empty() {
            break;
        }
        let Some((key, value)) = header.split_once(':') else {
            return Err(ReadError::Bad(400, "malformed header"));
        };
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
        match key.as_str() {
            "content-length" => {
                let n = value
                    .parse::<usize>()
                    .map_err(|_| ReadError::Bad(400, "bad Content-Length"))?;
                length = Some(n);
            }
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "connection" => match value.to_ascii_lowercase().as_str() {
                "close" => close = true,
                "keep-alive" => close = false,
                _ => {}
            },
            "expect" => expect = value.eq_ignore_ascii_case("100-continue"),
            _ => {}
        }
    }
    if length.is_some_and(|n| n > MAX_BODY) {
        return Err(ReadError::Bad(413, "request body too large"));
    }
    if expect && http11 {
        out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        out.flush()?;
    }
    let body = if chunked {
        read_chunked(reader)?
    } else {
        let mut body = vec![0; length.unwrap_or(0)];
        reader.read_exact(&mut body)?;
        body
    };
    let path = target.split('?').next().unwrap_or_default().to_owned();
    Ok(Incoming {
        request: Request {
            method: method.to_owned(),
            path,
            body,
        },
        close,
        http11,
    })
}

/// A `Transfer-Encoding: chunked` body (trailers skipped).
fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?.ok_or(ReadError::Closed)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size, 16).map_err(|_| ReadError::Bad(400, "bad chunk size"))?;
        if size == 0 {
            while !read_line(reader)?.ok_or(ReadError::Closed)?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(ReadError::Bad(413, "request body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        if !read_line(reader)?.ok_or(ReadError::Closed)?.is_empty() {
            return Err(ReadError::Bad(400, "chunk longer than its size"));
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

pub(crate) fn write_response(
    out: &mut impl Write,
    response: Response,
    close: bool,
    http11: bool,
) -> io::Result<()> {
    let connection = if close { "Connection: close\r\n" } else { "" };
    match response {
        Response::Json { status, body } => {
            write!(
                out,
                "HTTP/1.1 {status} {}\r\nContent-Type: {PLUGIN_JSON}\r\nContent-Length: {}\r\n{connection}\r\n{body}",
                reason(status),
                body.len()
            )?;
            out.flush()
        }
        Response::Stream {
            content_type,
            write,
        } if http11 => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n{connection}\r\n"
            )?;
            out.flush()?;
            let mut chunks = BufWriter::with_capacity(32 << 10, Chunked(&mut *out));
            write(&mut chunks)?;
            chunks.flush()?;
            drop(chunks);
            out.write_all(b"0\r\n\r\n")?;
            out.flush()
        }
        Response::Stream {
            content_type,
            write,
        } => {
            write!(
                out,
                "HTTP/1.0 200 OK\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n"
            )?;
            write(&mut *out)?;
            out.flush()
        }
    }
}

/// Writes each `write` as one HTTP chunk.
struct Chunked<W: Write>(W);

impl<W: Write> Write for Chunked<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !buf.is_empty() {
            write!(self.0, "{:x}\r\n", buf.len())?;
            self.0.write_all(buf)?;
            self.0.write_all(b"\r\n")?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
