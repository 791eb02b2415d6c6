//! Credentials: what to authenticate with ([`Credentials`]), where it
//! comes from ([`CredentialSource`]: the caller's [`StaticCredentials`], or
//! Docker's `config.json` and its helpers: [`DockerConfig`]), and how
//! `login`/`logout` store and erase it where Docker would.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{Error, Result, one_line};

/// What to authenticate with at one registry.
#[derive(Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Credentials {
    /// No credentials: anonymous tokens only.
    #[default]
    Anonymous,
    /// A user name and password (or personal access token).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken` in the Docker config).
    IdentityToken(String),
    /// A bearer token sent as it is (`registrytoken` in the Docker config).
    RegistryToken(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(***)"),
            Credentials::RegistryToken(_) => f.write_str("RegistryToken(***)"),
        }
    }
}

/// Where credentials for a registry host come from.
pub trait CredentialSource: Send + Sync {
    /// The credentials for `host` (`host[:port]` as written in references;
    /// `docker.io` for Docker Hub). `Anonymous` when there are none.
    fn credentials(&self, host: &str) -> Result<Credentials>;
}

/// Fixed credentials per host, given by the caller.
#[derive(Debug, Default, Clone)]
pub struct StaticCredentials {
    by_host: HashMap<String, Credentials>,
}

impl StaticCredentials {
    /// No credentials for any host.
    pub fn new() -> StaticCredentials {
        StaticCredentials::default()
    }

    /// Adds credentials for `host`.
    #[must_use]
    pub fn with(mut self, host: &str, credentials: Credentials) -> StaticCredentials {
        self.by_host.insert(normalize_host(host), credentials);
        self
    }
}

impl CredentialSource for StaticCredentials {
    fn credentials(&self, host: &str) -> Result<Credentials> {
        Ok(self
            .by_host
            .get(&normalize_host(host))
            .cloned()
            .unwrap_or_default())
    }
}

/// The key Docker uses for a host: Docker Hub's aliases become `docker.io`;
/// a scheme and path (`https://index.docker.io/v1/`) are dropped.
pub fn normalize_host(key: &str) -> String {
    let s = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let s = s.split('/').next().unwrap_or(s).to_ascii_lowercase();
    match s.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_owned()
        }
        _ => s,
    }
}

/// Credentials from a Docker CLI config file (`~/.docker/config.json`):
/// `auths` (base64 `auth`, `username`/`password`, `identitytoken`,
/// `registrytoken`), `credHelpers` and `credsStore` through
/// `docker-credential-<helper> get`.
#[derive(Debug, Clone, Default)]
pub struct DockerConfig {
    path: Option<PathBuf>,
    file: ConfigFile,
    helper_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

#[derive(Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

impl DockerConfig {
    /// The config Docker would read: `$DOCKER_CONFIG/config.json`, else
    /// `$HOME/.docker/config.json`. A missing file means no credentials.
    pub fn load_default() -> Result<DockerConfig> {
        match DockerConfig::default_path() {
            Some(p) => DockerConfig::load(&p),
            None => Ok(DockerConfig::default()),
        }
    }

    /// Where Docker keeps its config: `$DOCKER_CONFIG/config.json`, else
    /// `$HOME/.docker/config.json`.
    pub fn default_path() -> Option<PathBuf> {
        std::env::var_os("DOCKER_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker")))
            .map(|d| d.join("config.json"))
    }

    /// Reads `path`; a missing file means no credentials, a malformed one
    /// is an error naming it.
    pub fn load(path: &Path) -> Result<DockerConfig> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DockerConfig::default());
            }
            Err(e) => {
                return Err(Error::Config(format!("{}: {e}", path.display())));
            }
        };
        let file: ConfigFile = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        Ok(DockerConfig {
            path: Some(path.to_owned()),
            file,
            helper_dir: None,
        })
    }

    /// Looks for `docker-credential-*` programs in `dir` instead of `$PATH`
    /// (sandboxes and tests).
    #[must_use]
    pub fn with_helper_dir(mut self, dir: &Path) -> DockerConfig {
        self.helper_dir = Some(dir.to_owned());
        self
    }

    fn entry(&self, host: &str) -> Option<&AuthEntry> {
        let want = normalize_host(host);
        self.file
            .auths
            .iter()
            .find(|(k, _)| normalize_host(k) == want)
            .map(|(_, v)| v)
    }

    /// The helper for `host`: its `credHelpers` entry, else `credsStore`;
    /// an empty name is none, as Docker reads it.
    fn helper_for(&self, host: &str) -> Option<&str> {
        let want = normalize_host(host);
        self.file
            .cred_helpers
            .iter()
            .find(|(k, _)| normalize_host(k) == want)
            .map(|(_, v)| v.as_str())
            .or(self.file.creds_store.as_deref())
            .filter(|h| !h.is_empty())
    }

    fn where_(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| "docker config".to_owned(), |p| p.display().to_string())
    }
}

/// The server URL Docker passes to credential helpers for `host`.
fn helper_server(host: &str) -> String {
    if normalize_host(host) == "docker.io" {
        "https://index.docker.io/v1/".to_owned()
    } else {
        host.to_owned()
    }
}

impl CredentialSource for DockerConfig {
    fn credentials(&self, host: &str) -> Result<Credentials> {
        let fail = |message: String| Error::Credentials {
            host: host.to_owned(),
            message,
        };
        if let Some(helper) = self.helper_for(host) {
            let program = self.helper_program(helper);
            return run_helper(&program, &helper_server(host)).map_err(fail);
        }
        let Some(e) = self.entry(host) else {
            return Ok(Credentials::Anonymous);
        };
        if let Some(t) = e.identitytoken.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Credentials::IdentityToken(t.to_owned()));
        }
        if let Some(t) = e.registrytoken.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Credentials::RegistryToken(t.to_owned()));
        }
        if let Some(auth) = e.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|err| fail(format!("{}: auth is not base64: {err}", self.where_())))?;
            let text = String::from_utf8(decoded)
                .map_err(|_| fail(format!("{}: auth is not UTF-8", self.where_())))?;
            let (username, password) = text.split_once(':').ok_or_else(|| {
                fail(format!(
                    "{}: auth does not decode to user:password",
                    self.where_()
                ))
            })?;
            return Ok(Credentials::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            });
        }
        match (&e.username, &e.password) {
            (Some(u), Some(p)) if !u.is_empty() => Ok(Credentials::Basic {
                username: u.clone(),
                password: p.clone(),
            }),
            _ => Ok(Credentials::Anonymous),
        }
    }
}

/// Runs `docker-credential-<helper> get` with the server URL on stdin.
fn run_helper(program_path: &Path, server: &str) -> std::result::Result<Credentials, String> {
    let stdout = match helper_call(program_path, "get", server) {
        Ok(s) => s,
        // "credentials not found in native keychain" means anonymous.
        Err(m) if m.contains("credentials not found") => return Ok(Credentials::Anonymous),
        Err(m) => return Err(m),
    };
    let program = program_path.display();
    let parsed: HelperOutput = serde_json::from_str(&stdout)
        .map_err(|e| format!("{program} get printed something that is not JSON: {e}"))?;
    if parsed.username == "<token>" {
        Ok(Credentials::IdentityToken(parsed.secret))
    } else if parsed.username.is_empty() && parsed.secret.is_empty() {
        Ok(Credentials::Anonymous)
    } else {
        Ok(Credentials::Basic {
            username: parsed.username,
            password: parsed.secret,
        })
    }
}

/// Where `login` put credentials, or `logout` took them from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// `auths` in this config file.
    File(PathBuf),
    /// This credential helper program.
    Helper(String),
}

impl std::fmt::Display for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stored::File(p) => write!(f, "{}", p.display()),
            Stored::Helper(h) => write!(f, "the credential helper {h}"),
        }
    }
}

/// The key `login` stores `server`'s credentials under, as Docker does:
/// Docker Hub's is `https://index.docker.io/v1/`, others their `host[:port]`.
pub fn server_key(server: &str) -> String {
    helper_server(&normalize_host(server))
}

impl DockerConfig {
    /// Stores `username`/`password` for `server` where Docker would: its
    /// credential helper (`credHelpers`, else `credsStore`) through
    /// `docker-credential-<helper> store`, else `auths` in the config file,
    /// written atomically with mode 0600, every other key kept.
    pub fn store(
        &self,
        path: &Path,
        server: &str,
        username: &str,
        password: &str,
    ) -> Result<Stored> {
        let key = server_key(server);
        if let Some(helper) = self.helper_for(server) {
            let program = self.helper_program(helper);
            let input =
                serde_json::json!({"ServerURL": key, "Username": username, "Secret": password});
            helper_call(&program, "store", &input.to_string()).map_err(|m| Error::Credentials {
                host: server.to_owned(),
                message: m,
            })?;
            // A password the file held from before must not outlive it.
            self.drop_file_entry(path, server)?;
            return Ok(Stored::Helper(program.display().to_string()));
        }
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        edit_config(path, |auths| {
            // One entry per server: drop aliases (`docker.io` beside
            // `https://index.docker.io/v1/`) so the new one is the one read.
            let want = normalize_host(server);
            auths.retain(|k, _| normalize_host(k) != want);
            auths.insert(key.clone(), serde_json::json!({ "auth": auth }));
            true
        })?;
        Ok(Stored::File(path.to_owned()))
    }

    /// Erases `server`'s credentials the way they were stored. `Ok(None)`:
    /// there were none.
    pub fn erase(&self, path: &Path, server: &str) -> Result<Option<Stored>> {
        let key = server_key(server);
        if let Some(helper) = self.helper_for(server) {
            let program = self.helper_program(helper);
            let erased = match helper_call(&program, "erase", &key) {
                Ok(_) => Some(Stored::Helper(program.display().to_string())),
                Err(m) if m.contains("credentials not found") => None,
                Err(m) => {
                    return Err(Error::Credentials {
                        host: server.to_owned(),
                        message: m,
                    });
                }
            };
            // And what the file held from before a helper was configured.
            let from_file = self.drop_file_entry(path, server)?;
            return Ok(erased.or(from_file));
        }
        let want = normalize_host(server);
        let mut found = false;
        edit_config(path, |auths| {
            let before = auths.len();
            auths.retain(|k, _| normalize_host(k) != want);
            found = auths.len() != before;
            found
        })?;
        Ok(found.then(|| Stored::File(path.to_owned())))
    }

    /// Removes `server`'s `auths` entries (and its aliases') from the
    /// file, when there are any.
    fn drop_file_entry(&self, path: &Path, server: &str) -> Result<Option<Stored>> {
        if self.entry(server).is_none() {
            return Ok(None);
        }
        let want = normalize_host(server);
        edit_config(path, |auths| {
            let before = auths.len();
            auths.retain(|k, _| normalize_host(k) != want);
            auths.len() != before
        })?;
        Ok(Some(Stored::File(path.to_owned())))
    }

    fn helper_program(&self, helper: &str) -> PathBuf {
        let program = format!("docker-credential-{helper}");
        match &self.helper_dir {
            Some(dir) => dir.join(program),
            None => PathBuf::from(program),
        }
    }
}

/// Rewrites `auths` of the config file at `path` through `change` (which
/// says whether it changed anything), keeping every other key and the order
/// of keys, with Docker's tab indentation; atomically (temp file, fsync,
/// rename) and mode 0600.
fn edit_config(
    path: &Path,
    change: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>) -> bool,
) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let fail = |m: String| Error::Config(format!("{}: {m}", path.display()));
    // A symlinked config (dotfiles managers do this) is written where it
    // points: replacing the link would leave its target stale.
    let resolved;
    let path = match std::fs::canonicalize(path) {
        Ok(p) if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) => {
            resolved = p;
            resolved.as_path()
        }
        _ => path,
    };
    let mut doc = match std::fs::read(path) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => {
            serde_json::Value::Object(serde_json::Map::new())
        }
        Ok(b) => serde_json::from_slice(&b).map_err(|e| fail(e.to_string()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            serde_json::Value::Object(serde_json::Map::new())
        }
        Err(e) => return Err(fail(e.to_string())),
    };
    let obj = doc
        .as_object_mut()
        .ok_or_else(|| fail("is not a JSON object".to_owned()))?;
    let auths = obj
        .entry("auths")
        .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    let auths = auths
        .as_object_mut()
        .ok_or_else(|| fail("auths is not a JSON object".to_owned()))?;
    if !change(auths) {
        return Ok(());
    }
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(&doc, &mut ser).map_err(|e| fail(e.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    let tmp = dir.join(format!(".config.json.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&out)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e.to_string())
    })
}

/// Runs `docker-credential-<helper> VERB` with `input` on stdin; its stdout
/// on success.
fn helper_call(program: &Path, verb: &str, input: &str) -> std::result::Result<String, String> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let name = program.display();
    let mut child = Command::new(program)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {name}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is handled by its status below.
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{name}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    let msg = if stdout.trim().is_empty() {
        String::from_utf8_lossy(&out.stderr).into_owned()
    } else {
        stdout
    };
    Err(format!(
        "{name} {verb} failed ({}): {}",
        out.status,
        one_line(&msg, 200)
    ))
}

/// A shared credential source.
pub(crate) type SharedCredentials = Arc<dyn CredentialSource>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_entries_resolve_by_host() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cr:et");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},
                   "reg.example:5000":{{"identitytoken":"refresh-me"}},
                   "http://plain.example/v2/":{{"username":"bob","password":"pw"}},
                   "bad.example":{{"auth":"!!!"}}}}}}"#
            ),
        )
        .unwrap();
        let cfg = DockerConfig::load(&path).unwrap();
        assert_eq!(
            cfg.credentials("docker.io").unwrap(),
            Credentials::Basic {
                username: "alice".into(),
                password: "s3cr:et".into()
            }
        );
        assert_eq!(
            cfg.credentials("reg.example:5000").unwrap(),
            Credentials::IdentityToken("refresh-me".into())
        );
        assert_eq!(
            cfg.credentials("plain.example").unwrap(),
            Credentials::Basic {
                username: "bob".into(),
                password: "pw".into()
            }
        );
        assert_eq!(
            cfg.credentials("other.example").unwrap(),
            Credentials::Anonymous
        );
        let err = cfg.credentials("bad.example").unwrap_err().to_string();
        assert!(
            err.contains("bad.example") && err.contains("base64"),
            "{err}"
        );

        std::fs::write(&path, b"{not json").unwrap();
        let err = DockerConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
        assert!(
            DockerConfig::load(&dir.path().join("missing.json"))
                .unwrap()
                .credentials("docker.io")
                .unwrap()
                == Credentials::Anonymous
        );
    }

    #[test]
    fn credential_helpers_are_run_with_the_server_on_stdin() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-pctest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\ncase \"$server\" in\n  reg.example) echo '{\"ServerURL\":\"reg.example\",\"Username\":\"carol\",\"Secret\":\"pw2\"}' ;;\n  https://index.docker.io/v1/) echo '{\"Username\":\"<token>\",\"Secret\":\"rt\"}' ;;\n  broken.example) echo 'not json' ;;\n  *) echo 'credentials not found in native keychain'; exit 1 ;;\nesac\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = dir.path().join("config.json");
        std::fs::write(
            &config,
            r#"{"credsStore":"pctest","credHelpers":{"other.example":"missing-helper"}}"#,
        )
        .unwrap();
        let cfg = DockerConfig::load(&config)
            .unwrap()
            .with_helper_dir(dir.path());
        assert_eq!(
            cfg.credentials("reg.example").unwrap(),
            Credentials::Basic {
                username: "carol".into(),
                password: "pw2".into()
            }
        );
        assert_eq!(
            cfg.credentials("docker.io").unwrap(),
            Credentials::IdentityToken("rt".into())
        );
        assert_eq!(
            cfg.credentials("nobody.example").unwrap(),
            Credentials::Anonymous
        );
        let err = cfg.credentials("broken.example").unwrap_err().to_string();
        assert!(
            err.contains("broken.example") && err.contains("not JSON"),
            "{err}"
        );
        let err = cfg.credentials("other.example").unwrap_err().to_string();
        assert!(err.contains("docker-credential-missing-helper"), "{err}");
    }

    #[test]
    fn store_and_erase_keep_everything_else() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker/config.json");
        // No file yet: made, 0600, with the directory.
        let cfg = DockerConfig::load(&path).unwrap();
        assert_eq!(
            cfg.store(&path, "docker.io", "alice", "pw").unwrap(),
            Stored::File(path.clone())
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            v["auths"]["https://index.docker.io/v1/"]["auth"],
            "YWxpY2U6cHc="
        );

        std::fs::write(
            &path,
            r#"{"z-first": 1, "auths": {"docker.io": {"auth": "b2xkOm9sZA=="}, "x.example": {"auth": "eDp5"}}, "a-last": [1, 2]}"#,
        )
        .unwrap();
        let cfg = DockerConfig::load(&path).unwrap();
        cfg.store(&path, "index.docker.io", "bob", "new").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        // The alias `docker.io` is replaced, not kept beside the new key.
        assert!(!text.contains("b2xkOm9sZA=="), "{text}");
        assert!(
            text.find("z-first") < text.find("auths") && text.find("auths") < text.find("a-last"),
            "{text}"
        );
        let cfg = DockerConfig::load(&path).unwrap();
        assert_eq!(
            cfg.credentials("docker.io").unwrap(),
            Credentials::Basic {
                username: "bob".into(),
                password: "new".into()
            }
        );
        assert_eq!(
            cfg.erase(&path, "docker.io").unwrap(),
            Some(Stored::File(path.clone()))
        );
        assert_eq!(cfg.erase(&path, "docker.io").unwrap(), None);
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["auths"]["x.example"]["auth"], "eDp5");
        assert_eq!(v["a-last"], serde_json::json!([1, 2]));
        // A config that is not an object is named, and left alone.
        std::fs::write(&path, "[1]").unwrap();
        let err = cfg
            .store(&path, "x.example", "u", "p")
            .unwrap_err()
            .to_string();
        assert!(err.contains("config.json: is not a JSON object"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[1]");
    }

    #[test]
    fn a_symlinked_config_is_written_where_it_points_and_helpers_clear_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("dotfiles-config.json");
        std::fs::write(
            &real,
            r#"{"auths": {"reg.example": {"auth": "b2xkOm9sZA=="}}}"#,
        )
        .unwrap();
        let link = dir.path().join("config.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let cfg = DockerConfig::load(&link).unwrap();
        cfg.store(&link, "other.example", "u", "p").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let text = std::fs::read_to_string(&real).unwrap();
        assert!(
            text.contains("other.example") && text.contains("reg.example"),
            "{text}"
        );

        // With a helper configured, a store goes to the helper and the
        // file's old password for that server goes away.
        let helper = dir.path().join("docker-credential-pctest");
        std::fs::write(&helper, "#!/bin/sh\ncat > /dev/null\n").unwrap();
        std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        std::fs::write(
            &real,
            r#"{"credsStore": "pctest", "auths": {"reg.example": {"auth": "b2xkOm9sZA=="}, "x.example": {"auth": "eDp5"}}}"#,
        )
        .unwrap();
        let cfg = DockerConfig::load(&link)
            .unwrap()
            .with_helper_dir(dir.path());
        let stored = cfg.store(&link, "reg.example", "u", "p").unwrap();
        assert!(matches!(stored, Stored::Helper(_)), "{stored:?}");
        let text = std::fs::read_to_string(&real).unwrap();
        assert!(
            !text.contains("b2xkOm9sZA==") && text.contains("eDp5"),
            "{text}"
        );
        // An empty helper name is no helper.
        std::fs::write(&real, r#"{"credsStore": ""}"#).unwrap();
        let cfg = DockerConfig::load(&link).unwrap();
        assert_eq!(
            cfg.store(&link, "reg.example", "u", "p").unwrap(),
            Stored::File(link.clone())
        );
    }
}
