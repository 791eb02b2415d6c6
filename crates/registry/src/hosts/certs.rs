//! Docker's cert files in a registry's directory: every `*.crt` is a CA,
//! every `X.cert` with its `X.key` a client certificate (mutual TLS).

use std::path::{Path, PathBuf};

use super::TlsFiles;
use crate::error::{Error, Result};

/// The TLS files in `dir` (a `certs.d/<host>` directory). A `.cert` without
/// its `.key`, or a `.key` without its `.cert`, is an error naming it.
pub(crate) fn load(dir: &Path) -> Result<TlsFiles> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::Config(format!("{}: {e}", dir.display())))?;
    let mut names: Vec<PathBuf> = entries
        .filter_map(std::result::Result::ok)
        .map(|e| e.path())
        .collect();
    names.sort();
    let mut tls = TlsFiles::default();
    for p in &names {
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or_default();
        match ext {
            "crt" => tls.ca.push(p.clone()),
            "cert" => {
                let key = p.with_extension("key");
                if !key.is_file() {
                    return Err(Error::Config(format!(
                        "{}: client certificate without its key {}",
                        p.display(),
                        key.display()
                    )));
                }
                // Docker offers every pair; rustls presents one identity,
                // so the first by name is the one.
                if tls.client.is_none() {
                    tls.client = Some((p.clone(), key));
                }
            }
            "key" => {
                let cert = p.with_extension("cert");
                if !cert.is_file() {
                    return Err(Error::Config(format!(
                        "{}: client key without its certificate {}",
                        p.display(),
                        cert.display()
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_cert_files() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "ca.crt",
            "z-other.crt",
            "client.cert",
            "client.key",
            "README",
        ] {
            std::fs::write(d.path().join(f), "x").unwrap();
        }
        let tls = load(d.path()).unwrap();
        assert_eq!(
            tls.ca,
            [d.path().join("ca.crt"), d.path().join("z-other.crt")]
        );
        assert_eq!(
            tls.client,
            Some((d.path().join("client.cert"), d.path().join("client.key")))
        );
        std::fs::write(d.path().join("lone.key"), "x").unwrap();
        let e = load(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("lone.key: client key without its certificate"),
            "{e}"
        );
        std::fs::remove_file(d.path().join("lone.key")).unwrap();
        std::fs::write(d.path().join("lone.cert"), "x").unwrap();
        let e = load(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("lone.cert: client certificate without its key"),
            "{e}"
        );
    }
}
