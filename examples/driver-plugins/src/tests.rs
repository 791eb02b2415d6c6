//! The HTTP framing, against a served socket in a temporary directory.

use super::*;
use std::io::{BufRead, Read};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system's temporary one.
fn temp_dir(tag: &str) -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "driver-plugins-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Serves an echoing handler; returns the socket path.
fn serve_echo(dir: &Path) -> std::path::PathBuf {
    let sock = dir.join("echo.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let handler = |r: &Request| match r.path.as_str() {
        "/Echo" => Response::json(format!(
            "{{\"Method\":{},\"Name\":{},\"Len\":{}}}",
            quote(&r.method),
            quote(&r.string("Name").unwrap_or_default()),
            r.body.len()
        )),
        "/Stream" => Response::stream(JSON_STREAM, |w| {
            for i in 0..3 {
                write!(w, "{{\"n\":{i}}}")?;
                w.flush()?;
            }
            Ok(())
        }),
        other => Response::error(404, &format!("unknown endpoint {other}")),
    };
    std::thread::spawn(move || serve(&listener, "test", &(Arc::new(handler) as Arc<Handler>)));
    sock
}

/// A response's status, headers (lower-cased names) and de-chunked body.
fn read_response(r: &mut impl BufRead) -> (u16, Vec<(String, String)>, String) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        headers.push((k.to_ascii_lowercase(), v.trim().to_owned()));
    }
    let header = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if status < 200 {
        // An interim response has no body.
    } else if header("transfer-encoding").as_deref() == Some("chunked") {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk).unwrap();
            assert!(chunk.ends_with(b"\r\n"));
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(n) = header("content-length") {
        body.resize(n.parse().unwrap(), 0);
        r.read_exact(&mut body).unwrap();
    } else {
        r.read_to_end(&mut body).unwrap();
    }
    (status, headers, String::from_utf8(body).unwrap())
}

#[test]
fn keep_alive_and_chunked_requests() {
    let dir = temp_dir("http");
    let sock = serve_echo(&dir);
    let conn = UnixStream::connect(&sock).unwrap();
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);

    let body = r#"{"Name":"v1","Opts":{}}"#;
    for _ in 0..2 {
        write!(
            w,
            "POST /Echo HTTP/1.1\r\nHost: plugin\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let (status, headers, reply) = read_response(&mut r);
        assert_eq!(status, 200);
        assert!(headers.contains(&("content-type".into(), PLUGIN_JSON.into())));
        assert_eq!(reply, r#"{"Method":"POST","Name":"v1","Len":23}"#);
    }

    // As Go's client sends a body of unknown length, with an extension and a trailer.
    w.write_all(
        b"POST /Echo HTTP/1.1\r\nHost: plugin\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\n{\"Nam\r\n10;ext=1\r\ne\":\"chunked\"}\n  \r\n0\r\nX-Trailer: 1\r\n\r\n",
    )
    .unwrap();
    assert_eq!(
        read_response(&mut r).2,
        r#"{"Method":"POST","Name":"chunked","Len":21}"#
    );

    // An empty body, an Expect header, a query string.
    w.write_all(b"GET /Echo?x=1 HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let (status, _, _) = read_response(&mut r);
    assert_eq!(status, 100);
    assert_eq!(
        read_response(&mut r).2,
        r#"{"Method":"GET","Name":"","Len":0}"#
    );

    // A streamed reply, chunked, then the connection goes on.
    w.write_all(b"POST /Stream HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
        .unwrap();
    let (status, headers, reply) = read_response(&mut r);
    assert_eq!(status, 200);
    assert!(headers.contains(&("content-type".into(), JSON_STREAM.into())));
    assert_eq!(reply, r#"{"n":0}{"n":1}{"n":2}"#);

    w.write_all(b"POST /Nope HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (status, headers, reply) = read_response(&mut r);
    assert_eq!(
        (status, reply.as_str()),
        (404, r#"{"Err":"unknown endpoint /Nope"}"#)
    );
    assert!(headers.contains(&("connection".into(), "close".into())));
    let mut rest = Vec::new();
    assert_eq!(r.read_to_end(&mut rest).unwrap(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_requests_are_refused() {
    let dir = temp_dir("bad");
    let sock = serve_echo(&dir);
    for (request, want) in [
        (
            format!(
                "POST /Echo HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
                MAX_BODY + 1
            ),
            413,
        ),
        (
            "POST /Echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_owned(),
            400,
        ),
        ("POST /Echo HTTP/1.1\r\nNo colon\r\n\r\n".to_owned(), 400),
    ] {
        let mut conn = UnixStream::connect(&sock).unwrap();
        conn.write_all(request.as_bytes()).unwrap();
        let (status, _, body) = read_response(&mut BufReader::new(conn));
        assert_eq!(status, want, "{body}");
        assert!(body.starts_with("{\"Err\":"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn http_1_0_streams_until_close() {
    let dir = temp_dir("http10");
    let sock = serve_echo(&dir);
    let mut conn = UnixStream::connect(&sock).unwrap();
    conn.write_all(b"POST /Stream HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let (status, _, body) = read_response(&mut BufReader::new(conn));
    assert_eq!((status, body.as_str()), (200, r#"{"n":0}{"n":1}{"n":2}"#));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn request_helpers() {
    let r = Request::post(
        "/X",
        "{\"Name\":\"a\",\n\"Long\":\"".to_owned() + &"y".repeat(300) + "\"}",
    );
    assert_eq!(r.string("Name").as_deref(), Some("a"));
    let s = r.summary();
    assert!(s.starts_with("{\"Name\":\"a\", \"Long\""), "{s}");
    assert!(s.ends_with('…') && s.chars().count() == 161, "{s}");
    assert_eq!(Response::error(500, "x\"y").text(), r#"{"Err":"x\"y"}"#);
    let streamed = Response::stream(JSON_STREAM, |w| w.write_all(b"abc"));
    assert_eq!(streamed.status(), 200);
    assert_eq!(streamed.into_body().unwrap(), b"abc");
}
