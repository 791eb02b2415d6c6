//! What the sample Docker driver plugins share: a small HTTP/1.1 server on
//! a unix socket (the transport of Docker's plugin protocol), hand-written
//! JSON and base64 helpers ([`json`]), and the log driver's `LogEntry`
//! protobuf codec ([`logentry`]).
//!
//! [`run`] reads `$SOCKET` (the socket's file name, a default per plugin)
//! and `$SOCKET_DIR` (default `/run/docker/plugins`), exits on SIGTERM or
//! SIGINT after removing the socket (as PID 1 of its namespace a plugin
//! would ignore an unhandled SIGTERM), and serves each connection on a
//! thread of its own: keep-alive, `Content-Length` or chunked request
//! bodies of up to 16 MiB, and one line per request on stderr.

mod http;
pub mod json;
pub mod logentry;

use http::{ReadError, read_request, write_response};
use std::borrow::Cow;
use std::io::{self, BufReader, BufWriter, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;

pub use json::{base64_decode, quote};

/// The largest request body served.
pub const MAX_BODY: usize = 16 << 20;
/// The content type of the plugin protocol's JSON replies.
pub const PLUGIN_JSON: &str = "application/vnd.docker.plugins.v1.2+json";
/// The content type of a log driver's `ReadLogs` stream.
pub const JSON_STREAM: &str = "application/x-json-stream";

/// A request from dockerd: its path (`/Plugin.Activate`, ...) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The HTTP method, `POST` for every call of the plugin protocol.
    pub method: String,
    /// The request target without any query string.
    pub path: String,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Request {
    /// A `POST` of `body` to `path`, as dockerd sends them.
    pub fn post(path: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            method: "POST".to_owned(),
            path: path.to_owned(),
            body: body.into(),
        }
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The string field `key` of the body's JSON object.
    pub fn string(&self, key: &str) -> Option<String> {
        json::string(&self.text(), key)
    }

    /// The body on one line, cut short, for the log.
    pub fn summary(&self) -> String {
        const MAX: usize = 160;
        let text = self.text();
        let mut out: String = text
            .trim()
            .chars()
            .take(MAX)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if text.trim().chars().nth(MAX).is_some() {
            out.push('…');
        }
        out
    }
}

/// Writes a streamed response body.
pub type StreamWriter = Box<dyn FnOnce(&mut dyn Write) -> io::Result<()> + Send>;

/// A plugin's reply.
pub enum Response {
    /// A JSON body, sent with `Content-Length`.
    Json {
        /// The HTTP status.
        status: u16,
        /// The JSON text.
        body: String,
    },
    /// A body written by a closure, sent chunked (or until close to an
    /// HTTP/1.0 client), status 200.
    Stream {
        /// Its `Content-Type`.
        content_type: String,
        /// Writes the body.
        write: StreamWriter,
    },
}

impl Response {
    /// A 200 reply with the JSON text `body`.
    pub fn json(body: impl Into<String>) -> Self {
        Self::Json {
            status: 200,
            body: body.into(),
        }
    }

    /// A reply with `status` and the body `{"Err":"<message>"}`.
    pub fn error(status: u16, message: &str) -> Self {
        Self::Json {
            status,
            body: format!("{{\"Err\":{}}}", quote(message)),
        }
    }

    /// A 200 reply whose body `write` produces.
    pub fn stream(
        content_type: &str,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()> + Send + 'static,
    ) -> Self {
        Self::Stream {
            content_type: content_type.to_owned(),
            write: Box::new(write),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::Json { status, .. } => *status,
            Self::Stream { .. } => 200,
        }
    }

    /// The whole body (running a stream's writer), for tests.
    pub fn into_body(self) -> io::Result<Vec<u8>> {
        match self {
            Self::Json { body, .. } => Ok(body.into_bytes()),
            Self::Stream { write, .. } => {
                let mut out = Vec::new();
                write(&mut out)?;
                Ok(out)
            }
        }
    }

    /// The body as text, for tests.
    pub fn text(self) -> String {
        String::from_utf8_lossy(&self.into_body().unwrap_or_default()).into_owned()
    }
}

/// What answers requests.
pub type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// Serves `handler` on `$SOCKET_DIR/$SOCKET` until SIGTERM or SIGINT.
pub fn run(
    default_socket: &str,
    handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
) -> ! {
    let name = program_name();
    let socket = std::env::var("SOCKET").unwrap_or_else(|_| default_socket.to_owned());
    let dir = std::env::var("SOCKET_DIR").unwrap_or_else(|_| "/run/docker/plugins".to_owned());
    let _ = std::fs::create_dir_all(&dir);
    let path = Path::new(&dir).join(socket);
    match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ]) {
        Ok(mut signals) => {
            let path = path.clone();
            let name = name.clone();
            std::thread::spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    eprintln!("{name}: signal {sig}, exiting");
                    let _ = std::fs::remove_file(&path);
                    std::process::exit(0);
                }
            });
        }
        Err(e) => eprintln!("{name}: no signal handling: {e}"),
    }
    let _ = std::fs::remove_file(&path);
    let listener = match UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{name}: listening on {}: {e}", path.display());
            std::process::exit(1);
        }
    };
    eprintln!("{name}: serving on {}", path.display());
    serve(&listener, &name, &(Arc::new(handler) as Arc<Handler>));
    eprintln!("{name}: listener closed");
    std::process::exit(1);
}

/// The file name this program runs as.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| {
            Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "plugin".to_owned())
}

/// Accepts connections on `listener`, each served on a thread of its own.
pub fn serve(listener: &UnixListener, name: &str, handler: &Arc<Handler>) {
    for conn in listener.incoming().flatten() {
        let handler = Arc::clone(handler);
        let name = name.to_owned();
        std::thread::spawn(move || serve_connection(conn, &name, &*handler));
    }
}

/// Serves the requests of one connection, one after the other.
pub fn serve_connection(conn: UnixStream, name: &str, handler: &Handler) {
    let Ok(out) = conn.try_clone() else {
        return;
    };
    let mut out = BufWriter::new(out);
    let mut reader = BufReader::new(conn);
    loop {
        let incoming = match read_request(&mut reader, &mut out) {
            Ok(incoming) => incoming,
            Err(ReadError::Closed) => return,
            Err(ReadError::Bad(status, message)) => {
                eprintln!("{name}: bad request: {message}");
                let _ = write_response(&mut out, Response::error(status, message), true, true);
                return;
            }
        };
        let request = &incoming.request;
        eprintln!("{name}: {} {}", request.path, request.summary());
        let response = handler(request);
        if write_response(&mut out, response, incoming.close, incoming.http11).is_err()
            || incoming.close
        {
            return;
        }
    }
}

/// Appends `line` and a newline to the file `path` (one write, so that
/// concurrent appends do not interleave), complaining on stderr on failure.
pub fn append_line(path: &Path, line: &str) {
    let result = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
    if let Err(e) = result {
        eprintln!("{}: appending to {}: {e}", program_name(), path.display());
    }
}

#[cfg(test)]
mod tests;
