//! containerd's `hosts.toml`: `server`, then `[host."URL"]` tables, each
//! with `capabilities`, `ca`, `client`, `skip_verify`, `header`,
//! `override_path` and `dial_timeout`.
//!
//! Stricter than containerd on purpose: a file that does not parse, or a
//! value of the wrong type, is an error naming the file and line, never a
//! silent fall back to the upstream registry (a typo must not bypass a
//! mirror). An unknown key is a warning naming it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use toml::{Table, Value};

use super::{Capabilities, Origin, RegistryHost, TlsFiles};
use crate::error::{Error, Result};

/// The keys a host (or the top level, for `server`) may carry.
const HOST_KEYS: [&str; 7] = [
    "capabilities",
    "ca",
    "client",
    "skip_verify",
    "header",
    "override_path",
    "dial_timeout",
];

/// Parses `text`, the contents of `path`, into the hosts it lists in the
/// order they are tried, and warnings. `api_host` is the registry's own API
/// host, used when `server` is absent.
pub(crate) fn parse(
    path: &Path,
    text: &str,
    api_host: &str,
) -> Result<(Vec<RegistryHost>, Vec<String>)> {
    let table: Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map_or(0, |s| {
            text[..s.start.min(text.len())].matches('\n').count() + 1
        });
        Error::Config(format!(
            "{} line {line}: {}",
            path.display(),
            e.message().trim_end()
        ))
    })?;
    let mut file = HostsFile {
        path,
        dir: path.parent().unwrap_or(Path::new(".")),
        warnings: Vec::new(),
    };
    let mut hosts = Vec::new();
    for key in table.keys() {
        if key != "server" && key != "host" && !HOST_KEYS.contains(&key.as_str()) {
            file.warn(&format!("unknown key {key:?}"));
        }
    }
    if let Some(v) = table.get("host") {
        let Value::Table(list) = v else {
            return Err(file.bad("host", "a table of [host.\"URL\"] tables"));
        };
        for (url, v) in list {
            let where_ = format!("host.{url:?}");
            let Value::Table(t) = v else {
                return Err(file.bad(&where_, "a table"));
            };
            for k in t.keys() {
                if !HOST_KEYS.contains(&k.as_str()) {
                    file.warn(&format!("unknown key {k:?} in [{where_}]"));
                }
            }
            let u = file.url(&where_, url)?;
            hosts.push(file.host(&where_, u, t, false)?);
        }
    }
    let server = match table.get("server") {
        Some(Value::String(s)) => Some(file.url("server", s)?),
        Some(_) => return Err(file.bad("server", "a URL string")),
        None => None,
    };
    let given = server.is_some();
    let server_url = match server {
        Some(u) => u,
        None => RegistryHost::default_for(api_host)?.url,
    };
    let mut s = file.host("the top level", server_url, &table, true)?;
    s.scheme_given = given;
    if !given {
        // The registry itself when no `server` names it: everything, at
        // its usual path, as containerd makes it.
        s.capabilities = Capabilities::ALL;
        s.override_path = false;
    }
    hosts.push(s);
    Ok((hosts, file.warnings))
}

struct HostsFile<'a> {
    path: &'a Path,
    dir: &'a Path,
    warnings: Vec<String>,
}

impl HostsFile<'_> {
    fn warn(&mut self, what: &str) {
        self.warnings
            .push(format!("{}: {what} is ignored", self.path.display()));
    }

    fn bad(&self, key: &str, wanted: &str) -> Error {
        Error::Config(format!("{}: {key} must be {wanted}", self.path.display()))
    }

    fn url(&self, key: &str, s: &str) -> Result<Url> {
        let with_scheme = if s.contains("://") {
            s.to_owned()
        } else {
            format!("https://{s}")
        };
        let u = Url::parse(&with_scheme).map_err(|e| {
            Error::Config(format!(
                "{}: {key}: {s:?} is not a URL: {e}",
                self.path.display()
            ))
        })?;
        if !u.username().is_empty() || u.password().is_some() {
            return Err(Error::Config(format!(
                "{}: {key}: a URL with a user name or password is refused (it would be printed in messages): use login",
                self.path.display()
            )));
        }
        if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
            return Err(Error::Config(format!(
                "{}: {key}: {s:?} is not an http(s) URL with a host",
                self.path.display()
            )));
        }
        Ok(u)
    }

    fn path_of(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.dir.join(p)
        }
    }

    fn host(&self, where_: &str, url: Url, t: &Table, is_server: bool) -> Result<RegistryHost> {
        let key = |k: &str| format!("{k} in {where_}");
        let capabilities = match t.get("capabilities") {
            None => Capabilities::ALL,
            // containerd: an empty list means every capability.
            Some(Value::Array(list)) if list.is_empty() => Capabilities::ALL,
            Some(Value::Array(list)) => {
                let mut c = Capabilities {
                    pull: false,
                    resolve: false,
                    push: false,
                };
                for v in list {
                    match v.as_str().map(str::to_ascii_lowercase).as_deref() {
                        Some("pull") => c.pull = true,
                        Some("resolve") => c.resolve = true,
                        Some("push") => c.push = true,
                        _ => {
                            return Err(self.bad(
                                &key("capabilities"),
                                "a list of \"pull\", \"resolve\" and \"push\"",
                            ));
                        }
                    }
                }
                c
            }
            Some(_) => return Err(self.bad(&key("capabilities"), "a list")),
        };
        let ca = match t.get("ca") {
            None => Vec::new(),
            Some(Value::String(s)) => vec![self.path_of(s)],
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| v.as_str().map(|s| self.path_of(s)))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| self.bad(&key("ca"), "a path or a list of paths"))?,
            Some(_) => return Err(self.bad(&key("ca"), "a path or a list of paths")),
        };
        let clients = self.clients(&key("client"), t.get("client"))?;
        let skip_verify = match t.get("skip_verify") {
            None => false,
            Some(Value::Boolean(b)) => *b,
            Some(_) => return Err(self.bad(&key("skip_verify"), "true or false")),
        };
        let override_path = match t.get("override_path") {
            None => false,
            Some(Value::Boolean(b)) => *b,
            Some(_) => return Err(self.bad(&key("override_path"), "true or false")),
        };
        let dial_timeout = match t.get("dial_timeout") {
            None => None,
            Some(Value::String(s)) => Some(go_duration(s).ok_or_else(|| {
                self.bad(
                    &key("dial_timeout"),
                    "a duration such as \"500ms\" or \"3s\"",
                )
            })?),
            Some(_) => return Err(self.bad(&key("dial_timeout"), "a duration string")),
        };
        let mut headers = Vec::new();
        match t.get("header") {
            None => {}
            Some(Value::Table(h)) => {
                for (name, v) in h {
                    match v {
                        Value::String(s) => headers.push((name.clone(), s.clone())),
                        Value::Array(list) => {
                            for item in list {
                                let s = item.as_str().ok_or_else(|| {
                                    self.bad(&key("header"), "a table of strings or string lists")
                                })?;
                                headers.push((name.clone(), s.to_owned()));
                            }
                        }
                        _ => {
                            return Err(
                                self.bad(&key("header"), "a table of strings or string lists")
                            );
                        }
                    }
                }
            }
            Some(_) => return Err(self.bad(&key("header"), "a table")),
        }
        Ok(RegistryHost {
            url,
            scheme_given: true,
            is_server,
            capabilities,
            tls: TlsFiles {
                ca,
                client: clients.into_iter().next(),
                skip_verify,
            },
            headers,
            override_path,
            dial_timeout,
            origin: Origin::HostsFile(self.path.to_owned()),
        })
    }

    /// `client`: a file holding certificate and key, a list of such files,
    /// or a list of `[cert, key]` pairs. The first is presented (rustls
    /// takes one identity per connection).
    fn clients(&self, key: &str, v: Option<&Value>) -> Result<Vec<(PathBuf, PathBuf)>> {
        let wanted = "a file, a list of files, or a list of [cert, key] pairs";
        let one = |v: &Value| -> Option<(PathBuf, PathBuf)> {
            match v {
                Value::String(s) => Some((self.path_of(s), self.path_of(s))),
                Value::Array(pair) if pair.len() == 2 => {
                    let c = pair[0].as_str()?;
                    let k = pair[1].as_str()?;
                    Some((self.path_of(c), self.path_of(k)))
                }
                _ => None,
            }
        };
        match v {
            None => Ok(Vec::new()),
            Some(Value::String(_)) => Ok(vec![one(v.expect("some")).expect("a string")]),
            // A list of files (each with certificate and key), or of
            // `[cert, key]` pairs, as containerd reads it.
            Some(Value::Array(list)) => list
                .iter()
                .map(|item| one(item).ok_or_else(|| self.bad(key, wanted)))
                .collect(),
            Some(_) => Err(self.bad(key, wanted)),
        }
    }
}

/// A Go duration (`300ms`, `1.5s`, `2m30s`); `None` when malformed.
pub(crate) fn go_duration(s: &str) -> Option<Duration> {
    let mut rest = s.trim();
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut any = false;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[u_end..];
        total += n * unit;
        any = true;
    }
    (any && total.is_finite() && total < 1e9).then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_at(text: &str) -> Result<(Vec<RegistryHost>, Vec<String>)> {
        parse(
            Path::new("/etc/docker/certs.d/reg:5000/hosts.toml"),
            text,
            "reg:5000",
        )
    }

    #[test]
    fn hosts_come_in_file_order_then_the_server() {
        let (hosts, warnings) = parse_at(
            r#"
server = "https://reg:5000"
capabilities = ["pull", "resolve", "push"]
ca = "server-ca.pem"

[host."https://zz-mirror:5001"]
  capabilities = ["pull", "resolve"]
  ca = ["/etc/ca-a.pem", "ca-b.pem"]
  client = [["c.cert", "c.key"]]
  dial_timeout = "1500ms"
  [host."https://zz-mirror:5001".header]
    x-custom = "1"
    x-list = ["a", "b"]

[host."http://aa-mirror:5002/cache"]
  capabilities = ["pull"]
  override_path = true
  skip_verify = true
  colour = "blue"
"#,
        )
        .unwrap();
        let urls: Vec<&str> = hosts.iter().map(|h| h.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://zz-mirror:5001/",
                "http://aa-mirror:5002/cache",
                "https://reg:5000/"
            ]
        );
        let m = &hosts[0];
        assert_eq!(m.capabilities, Capabilities::MIRROR);
        assert_eq!(
            m.tls.ca,
            [
                PathBuf::from("/etc/ca-a.pem"),
                PathBuf::from("/etc/docker/certs.d/reg:5000/ca-b.pem")
            ]
        );
        assert_eq!(
            m.tls.client,
            Some((
                PathBuf::from("/etc/docker/certs.d/reg:5000/c.cert"),
                PathBuf::from("/etc/docker/certs.d/reg:5000/c.key")
            ))
        );
        assert_eq!(m.dial_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(m.headers.len(), 3);
        assert!(!m.is_server);
        let a = &hosts[1];
        assert!(a.override_path && a.tls.skip_verify && !a.capabilities.resolve);
        assert_eq!(a.api_root().as_str(), "http://aa-mirror:5002/cache/");
        let s = &hosts[2];
        assert!(s.is_server && s.scheme_given && s.capabilities.push);
        assert_eq!(
            s.tls.ca,
            [PathBuf::from("/etc/docker/certs.d/reg:5000/server-ca.pem")]
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("\"colour\""), "{warnings:?}");
    }

    #[test]
    fn without_server_the_registry_is_last_and_probed() {
        let (hosts, _) = parse_at(
            "capabilities = [\"pull\", \"resolve\"]\noverride_path = true\n[host.\"https://m:1\"]\ncapabilities = []\nclient = [\"a.pem\", \"b.pem\"]\n",
        )
        .unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[1].url.as_str(), "https://reg:5000/");
        assert!(!hosts[1].scheme_given);
        // The implicit registry may do everything, at /v2, whatever the
        // top level says.
        assert_eq!(hosts[1].capabilities, Capabilities::ALL);
        assert!(!hosts[1].override_path);
        // An empty list is every capability; a list of files is files.
        assert_eq!(hosts[0].capabilities, Capabilities::ALL);
        let dir = PathBuf::from("/etc/docker/certs.d/reg:5000");
        assert_eq!(
            hosts[0].tls.client,
            Some((dir.join("a.pem"), dir.join("a.pem")))
        );
        let (hosts, _) = parse_at("[host.\"https://m:1\"]\ncapabilities = [\"PULL\"]\n").unwrap();
        assert!(hosts[0].capabilities.pull && !hosts[0].capabilities.resolve);
        let e = parse_at("[host.\"https://u:p@m:1\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("user name or password is refused"), "{e}");
    }

    #[test]
    fn mistakes_name_the_file_and_line() {
        let e = parse_at(
            "server = \"https://reg:5000\"\n[host.\"https://m\"\ncapabilities = [\"pull\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("hosts.toml line 2"), "{e}");
        let e = parse_at("[host.\"https://m\"]\ncapabilities = [\"pul\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("capabilities in host.\"https://m\""), "{e}");
        let e = parse_at("[host.\"ftp://m\"]\n").unwrap_err().to_string();
        assert!(e.contains("not an http(s) URL"), "{e}");
        let e = parse_at("dial_timeout = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("dial_timeout in the top level"), "{e}");
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("3s"), Some(Duration::from_secs(3)));
        assert_eq!(go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(go_duration("0"), Some(Duration::ZERO));
        assert_eq!(go_duration("3"), None);
        assert_eq!(go_duration("s"), None);
        assert_eq!(go_duration(""), None);
    }
}
