//! A tiny HTTP/1.1 server on 127.0.0.1 for hostile-registry and token-server
//! tests: a handler closure answers each request, and may answer with bytes
//! no well-behaved server would send.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `PUT`…
    pub method: String,
    /// The request target with its query: `/v2/a/manifests/1?x=y`.
    pub target: String,
    /// Header names lower case, in order.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl Request {
    /// The first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or(&self.target)
    }

    /// Every value of query parameter `name`, percent-decoded.
    pub fn query_all(&self, name: &str) -> Vec<String> {
        let Some((_, q)) = self.target.split_once('?') else {
            return Vec::new();
        };
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| percent_decode(v))
            .collect()
    }

    /// The first value of query parameter `name`.
    pub fn query(&self, name: &str) -> Option<String> {
        self.query_all(name).into_iter().next()
    }
}

/// Decodes `%XX` and `+` of a query value.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz");
                if let Ok(v) = u8::from_str_radix(hex, 16) {
                    out.push(v);
                    i += 3;
                } else {
                    out.push(b'%');
                    i += 1;
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the handler answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A normal response; `Content-Length` is added.
    Full {
        /// Status code.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// Body (not sent for `HEAD`, but its length is announced).
        body: Vec<u8>,
    },
    /// Announce `declared` bytes, send `body`, then close the connection
    /// (a body shorter than announced: a cut transfer).
    Cut {
        /// Status code.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// The `Content-Length` sent.
        declared: u64,
        /// What is actually sent before closing.
        body: Vec<u8>,
    },
    /// These exact bytes, then close.
    Raw(Vec<u8>),
}

impl Reply {
    /// A response with a body.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Full {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// An empty response.
    pub fn status(status: u16) -> Reply {
        Reply::new(status, Vec::new())
    }

    /// A distribution error envelope.
    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        let body = serde_json::json!({"errors":[{"code":code,"message":message}]});
        Reply::new(status, body.to_string()).header("Content-Type", "application/json")
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        match &mut self {
            Reply::Full { headers, .. } | Reply::Cut { headers, .. } => {
                headers.push((name.to_owned(), value.to_owned()));
            }
            Reply::Raw(_) => {}
        }
        self
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// A running server; stopped on drop.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Request>>>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Listens on 127.0.0.1 on a free port and answers with `handler`.
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (s2, l2) = (Arc::clone(&stop), Arc::clone(&log));
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (h, l) = (Arc::clone(&handler), Arc::clone(&l2));
                std::thread::spawn(move || serve(conn, &*h, &l));
            }
        });
        Server {
            addr,
            stop,
            log,
            accept: Some(accept),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request served so far.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }
}

/// A read-only registry of one image: `manifest` (served with
/// `media_type` for any tag or digest) and `blobs` by digest, with `Range`
/// requests answered as a registry does (`206` and `Content-Range`).
pub fn serve_image<S: std::hash::BuildHasher + Send + Sync + 'static>(
    manifest: Vec<u8>,
    media_type: &str,
    blobs: std::collections::HashMap<String, Vec<u8>, S>,
) -> Server {
    let media_type = media_type.to_owned();
    Server::start(move |req| {
        let path = req.path();
        if path == "/v2/" {
            return Reply::status(200);
        }
        if path.contains("/manifests/") {
            return Reply::new(200, manifest.clone()).header("Content-Type", &media_type);
        }
        let d = path.rsplit('/').next().unwrap_or_default();
        let Some(b) = blobs.get(d) else {
            return Reply::status(404);
        };
        if let Some(from) = req
            .header("range")
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|r| r.parse::<usize>().ok())
        {
            return Reply::new(206, b[from..].to_vec()).header(
                "Content-Range",
                &format!("bytes {from}-{}/{}", b.len() - 1, b.len()),
            );
        }
        Reply::new(200, b.clone())
    })
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, handler: &Handler, log: &Mutex<Vec<Request>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    loop {
        let Some(req) = read_request(&mut reader) else {
            return;
        };
        log.lock().unwrap().push(req.clone());
        let close = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let head = req.method == "HEAD";
        match handler(&req) {
            Reply::Full {
                status,
                headers,
                body,
            } => {
                let mut h = head_bytes(status, &headers, body.len() as u64);
                if !head {
                    h.extend_from_slice(&body);
                }
                if out.write_all(&h).is_err() {
                    return;
                }
            }
            Reply::Cut {
                status,
                headers,
                declared,
                body,
            } => {
                let mut h = head_bytes(status, &headers, declared);
                h.extend_from_slice(&body);
                let _ = out.write_all(&h);
                let _ = out.flush();
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
            Reply::Raw(bytes) => {
                let _ = out.write_all(&bytes);
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
        }
        if close {
            return;
        }
    }
}

fn head_bytes(status: u16, headers: &[(String, String)], len: u64) -> Vec<u8> {
    let mut h = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    let mut has_len = false;
    for (k, v) in headers {
        has_len |= k.eq_ignore_ascii_case("content-length");
        let _ = write!(h, "{k}: {v}\r\n");
    }
    if !has_len {
        let _ = write!(h, "Content-Length: {len}\r\n");
    }
    h.push_str("\r\n");
    h.into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let mut req = Request {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if req
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            req.body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = req
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        let mut body = vec![0; n];
        r.read_exact(&mut body).ok()?;
        req.body = body;
    }
    Some(req)
}
