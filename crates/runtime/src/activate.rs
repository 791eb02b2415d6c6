//! `POST /Plugin.Activate` on the plugin's socket, and the check that what
//! the plugin says it implements matches the types its config declares.
//!
//! Docker skips this handshake for managed plugins; most plugins built on
//! Docker's SDK answer it, and a mismatch (a volume plugin configured as a
//! network driver) is worth a warning before an engine trips over it.

use std::io::{BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use pluginctl_oci::PluginConfig;

/// Connects to a unix socket through its directory's descriptor
/// (`/proc/self/fd/N/name`), so that a path past the 108 bytes of a socket
/// address still works.
pub fn connect(socket: &Path) -> std::io::Result<UnixStream> {
    let dir = socket.parent().unwrap_or(Path::new("/"));
    let name = socket
        .file_name()
        .ok_or_else(|| std::io::Error::other("a socket path without a file name"))?;
    let dir = std::fs::File::open(dir)?;
    let short = format!(
        "/proc/self/fd/{}/{}",
        std::os::fd::AsRawFd::as_raw_fd(&dir),
        name.to_string_lossy()
    );
    UnixStream::connect(short)
}

/// Sends `POST /Plugin.Activate` and returns the `Implements` list.
pub fn activate(socket: &Path, timeout: Duration) -> Result<Vec<String>, String> {
    let mut s = connect(socket).map_err(|e| format!("connecting: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.write_all(
        b"POST /Plugin.Activate HTTP/1.1\r\nHost: plugin\r\n\
          Accept: application/vnd.docker.plugins.v1.2+json\r\n\
          Content-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .map_err(|e| format!("writing: {e}"))?;
    let body = read_response(&mut BufReader::new(s))?;
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    if let Some(err) = v
        .get("Err")
        .and_then(|e| e.as_str())
        .filter(|e| !e.is_empty())
    {
        return Err(format!("the plugin answered an error: {err}"));
    }
    let list = v
        .get("Implements")
        .and_then(|i| i.as_array())
        .ok_or("the answer has no Implements list")?;
    Ok(list
        .iter()
        .filter_map(|i| i.as_str().map(str::to_owned))
        .collect())
}

/// One HTTP/1.1 response: status 200 required; at most 1 MiB of body.
fn read_response(r: &mut impl std::io::BufRead) -> Result<Vec<u8>, String> {
    let m = crate::http::read_message(r, true)
        .map_err(|e| format!("reading the answer: {e}"))?
        .ok_or("the plugin closed the connection without answering")?;
    if m.first.split_whitespace().nth(1) != Some("200") {
        return Err(format!("HTTP answer {:?}", m.first));
    }
    if m.body.len() > 1 << 20 {
        return Err("an answer past 1 MiB".to_owned());
    }
    Ok(m.body)
}

/// The warnings the `Implements` answer deserves against the config's
/// interface types (`docker.volumedriver/1.0` ↔ `VolumeDriver`; compared
/// without case, as Docker names `authz` in lower case).
pub fn mismatches(config: &PluginConfig, implements: &[String]) -> Vec<String> {
    let said: Vec<String> = implements.iter().map(|i| i.to_ascii_lowercase()).collect();
    config
        .interface
        .types
        .iter()
        .flatten()
        .filter(|t| t.prefix == "docker")
        .filter(|t| !said.contains(&t.capability.to_ascii_lowercase()))
        .map(|t| {
            format!(
                "the config declares {t} but the plugin's Plugin.Activate answer implements only {implements:?}"
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead as _;

    fn config(types: &str) -> PluginConfig {
        PluginConfig::from_slice(
            format!(r#"{{"Interface":{{"Types":{types},"Socket":"p.sock"}}}}"#).as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn implements_is_compared_without_case() {
        let c = config(r#"["docker.volumedriver/1.0","docker.authz/1.0"]"#);
        assert!(mismatches(&c, &["VolumeDriver".into(), "authz".into()]).is_empty());
        let w = mismatches(&c, &["NetworkDriver".into()]);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("docker.volumedriver/1.0"), "{w:?}");
    }

    #[test]
    fn responses_by_length_chunks_and_errors() {
        // The length decides, not the end of the stream.
        let mut r: &[u8] =
            b"HTTP/1.1 200 OK\r\nContent-Length: 29\r\n\r\n{\"Implements\":[\"IpamDriver\"]}trailing";
        assert_eq!(
            read_response(&mut r).unwrap(),
            b"{\"Implements\":[\"IpamDriver\"]}".to_vec()
        );
        let mut r: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(read_response(&mut r).unwrap(), b"{\"a\":1}".to_vec());
        let mut r: &[u8] = b"HTTP/1.1 404 Not Found\r\n\r\n";
        assert!(read_response(&mut r).unwrap_err().contains("404"));
    }

    #[test]
    fn activate_over_a_socket() {
        let dir = std::env::temp_dir().join(format!("pact-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.sock");
        let _ = std::fs::remove_file(&path);
        let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut first = String::new();
            r.read_line(&mut first).unwrap();
            assert!(first.starts_with("POST /Plugin.Activate "), "{first}");
            let body = br#"{"Implements": ["VolumeDriver"]}"#;
            write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .unwrap();
            c.write_all(body).unwrap();
        });
        assert_eq!(
            activate(&path, Duration::from_secs(5)).unwrap(),
            vec!["VolumeDriver".to_owned()]
        );
        server.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
