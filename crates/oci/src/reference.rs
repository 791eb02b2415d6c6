//! Image references in Docker's grammar, with Docker's normalisation.
//!
//! ```text
//! reference       := name [ ":" tag ] [ "@" digest ]
//! name            := [domain "/"] path-component ["/" path-component]*
//! domain          := host [":" port]      host: domain-name | "[" IPv6 "]"
//! domain-component:= [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! path-component  := alnum [separator alnum]*    alnum: [a-z0-9]+
//! separator       := "." | "_" | "__" | "-"+
//! tag             := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Digest, Error, Result};

/// The registry of names without a domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// An old spelling of [`DEFAULT_DOMAIN`], normalised to it.
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of official images on Docker Hub.
pub const OFFICIAL_NAMESPACE: &str = "library";
/// The tag a reference without tag or digest gets.
pub const DEFAULT_TAG: &str = "latest";
/// The longest name (`domain/path`) Docker accepts.
pub const MAX_NAME_LEN: usize = 255;
/// The longest tag Docker accepts.
pub const MAX_TAG_LEN: usize = 128;

/// A normalised image reference: domain, repository path, optional tag,
/// optional digest. `busybox` becomes `docker.io/library/busybox:latest`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference the way `docker plugin install` does: normalised
    /// (Docker Hub domain and `library/` added where Docker adds them) and
    /// tagged `latest` when it has neither tag nor digest.
    pub fn parse(input: &str) -> Result<Reference> {
        let mut r = Reference::parse_normalized(input)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_owned());
        }
        Ok(r)
    }

    /// Parses and normalises a reference without adding a default tag.
    pub fn parse_normalized(input: &str) -> Result<Reference> {
        let fail = |reason: String| Error::InvalidReference {
            input: input.to_owned(),
            reason,
        };
        if input.is_empty() {
            return Err(fail("empty reference".to_owned()));
        }
        if input.len() == 64
            && input
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(fail(
                "a 64-character hex string is an ID, not a repository name".to_owned(),
            ));
        }
        let (name_tag, digest) = match input.split_once('@') {
            Some((_, "")) => return Err(fail("empty digest after '@'".to_owned())),
            Some((n, d)) => {
                let digest = Digest::parse(d).map_err(|e| match e {
                    Error::InvalidDigest { reason, .. } => {
                        fail(format!("invalid digest {d:?}: {reason}"))
                    }
                    other => other,
                })?;
                (n, Some(digest))
            }
            None => (input, None),
        };
        let (name, tag) = match name_tag.rfind(':') {
            Some(i) if !name_tag[i..].contains('/') => (&name_tag[..i], Some(&name_tag[i + 1..])),
            _ => (name_tag, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(fail)?;
        }
        if name.is_empty() {
            return Err(fail("empty repository name".to_owned()));
        }
        let (domain, path) = split_domain(name);
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(fail("repository name must be lowercase".to_owned()));
        }
        check_domain(&domain).map_err(fail)?;
        for component in path.split('/') {
            check_path_component(component).map_err(fail)?;
        }
        let full_len = domain.len() + 1 + path.len();
        if full_len > MAX_NAME_LEN {
            return Err(fail(format!(
                "repository name is {full_len} characters, more than {MAX_NAME_LEN}"
            )));
        }
        Ok(Reference {
            domain,
            path,
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The registry host, with port: `docker.io`, `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry: `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `domain/path`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The name as Docker shows it: `busybox` for
    /// `docker.io/library/busybox`, `foo/bar` for `docker.io/foo/bar`.
    ///
    /// Unlike Docker, a Docker Hub path whose first component would read as
    /// a domain (`docker.io/0.a/b`) keeps its domain, so that the familiar
    /// form always parses back to the same reference.
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix("library/") {
            Some(rest) if !rest.contains('/') => rest.to_owned(),
            _ => match self.path.split_once('/') {
                Some((first, _)) if looks_like_domain(first) => self.name(),
                _ => self.path.clone(),
            },
        }
    }

    /// The whole reference as Docker shows it: familiar name, tag, digest.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_tag_digest(&mut s);
        s
    }

    /// The same reference with another tag (the digest is kept).
    pub fn with_tag(&self, tag: &str) -> Result<Reference> {
        check_tag(tag).map_err(|reason| Error::InvalidReference {
            input: format!("{}:{tag}", self.name()),
            reason,
        })?;
        Ok(Reference {
            tag: Some(tag.to_owned()),
            ..self.clone()
        })
    }

    /// The same reference pinned to a digest (the tag is kept).
    #[must_use]
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same name with neither tag nor digest.
    #[must_use]
    pub fn without_tag_or_digest(&self) -> Reference {
        Reference {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }

    fn push_tag_digest(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_str());
        }
    }
}

/// Docker's rule: a first component is a domain when it has a `.` or `:`,
/// is `localhost`, or has an uppercase letter.
fn looks_like_domain(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

/// Docker's `splitDockerDomain`.
fn split_domain(name: &str) -> (String, String) {
    let (mut domain, mut path) = match name.split_once('/') {
        Some((first, rest)) if looks_like_domain(first) => (first.to_owned(), rest.to_owned()),
        _ => (DEFAULT_DOMAIN.to_owned(), name.to_owned()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        DEFAULT_DOMAIN.clone_into(&mut domain);
    }
    if domain == DEFAULT_DOMAIN && !path.contains('/') {
        path = format!("{OFFICIAL_NAMESPACE}/{path}");
    }
    (domain, path)
}

fn check_tag(tag: &str) -> std::result::Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    if tag.is_empty() {
        return Err("empty tag after ':'".to_owned());
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(format!(
            "tag is {} characters, more than {MAX_TAG_LEN}",
            tag.len()
        ));
    }
    let bytes = tag.as_bytes();
    if !word(bytes[0]) || !bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-') {
        return Err(format!(
            "invalid tag {tag:?}: must match [A-Za-z0-9_][A-Za-z0-9_.-]*"
        ));
    }
    Ok(())
}

fn check_domain(domain: &str) -> std::result::Result<(), String> {
    let bad = |why: &str| Err(format!("invalid domain {domain:?}: {why}"));
    // Split off the port: after the closing bracket for IPv6, else the last ':'.
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return bad("unclosed '['");
        };
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return bad("invalid IPv6 address");
        }
        match after {
            "" => (None, None),
            p => match p.strip_prefix(':') {
                Some(p) => (None, Some(p)),
                None => return bad("unexpected characters after ']'"),
            },
        }
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(domain), None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad("port must be digits");
    }
    if let Some(host) = host {
        for component in host.split('.') {
            let b = component.as_bytes();
            if b.is_empty() {
                return bad("empty domain component");
            }
            if !b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-') {
                return bad("only letters, digits, '-' and '.' are allowed");
            }
            if b[0] == b'-' || b[b.len() - 1] == b'-' {
                return bad("a domain component cannot start or end with '-'");
            }
        }
    }
    Ok(())
}

fn check_path_component(c: &str) -> std::result::Result<(), String> {
    if c.is_empty() {
        return Err("empty path component".to_owned());
    }
    let rule = || {
        Err(format!(
            "invalid path component {c:?}: must be lowercase letters and digits, separated by '.', '_', '__' or dashes"
        ))
    };
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return rule();
    }
    let mut sep = String::new();
    for &b in bytes {
        if alnum(b) {
            let ok =
                matches!(sep.as_str(), "" | "." | "_" | "__") || sep.bytes().all(|s| s == b'-');
            if !ok {
                return rule();
            }
            sep.clear();
        } else if matches!(b, b'.' | b'_' | b'-') {
            sep.push(char::from(b));
        } else {
            return rule();
        }
    }
    Ok(())
}

impl fmt::Display for Reference {
    /// The full normalised form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_tag_digest(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Reference> {
        Reference::parse(s)
    }
}

impl Serialize for Reference {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Reference, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Reference::parse_normalized(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "sha256:276b2c3b5e56c90b0052cd1d4213c6684ff3057e32258ec21e7212bca619a9bc";

    /// `input` parses to `expected`: `full | familiar`, or `err <message>`.
    fn check(input: &str, expected: &str) {
        let got = match Reference::parse(input) {
            Ok(r) => format!("{r} | {}", r.familiar()),
            Err(e) => format!("err {e}"),
        };
        assert_eq!(got, expected, "input {input:?}");
    }

    #[test]
    fn valid_references() {
        check(
            "busybox",
            "docker.io/library/busybox:latest | busybox:latest",
        );
        check(
            "busybox:1.36",
            "docker.io/library/busybox:1.36 | busybox:1.36",
        );
        check(
            "library/busybox",
            "docker.io/library/busybox:latest | busybox:latest",
        );
        check(
            "docker.io/busybox",
            "docker.io/library/busybox:latest | busybox:latest",
        );
        check(
            "index.docker.io/busybox",
            "docker.io/library/busybox:latest | busybox:latest",
        );
        check(
            "docker.io/library/busybox:1",
            "docker.io/library/busybox:1 | busybox:1",
        );
        check("foo/bar", "docker.io/foo/bar:latest | foo/bar:latest");
        check("foo/bar/baz:t", "docker.io/foo/bar/baz:t | foo/bar/baz:t");
        check(
            "docker.io/library/a/b",
            "docker.io/library/a/b:latest | library/a/b:latest",
        );
        check(
            "vieux/sshfs:next",
            "docker.io/vieux/sshfs:next | vieux/sshfs:next",
        );
        check(
            "localhost/foo",
            "localhost/foo:latest | localhost/foo:latest",
        );
        check(
            "localhost:5000/a/b:t",
            "localhost:5000/a/b:t | localhost:5000/a/b:t",
        );
        check(
            "127.0.0.1:5001/test/sample:1.0",
            "127.0.0.1:5001/test/sample:1.0 | 127.0.0.1:5001/test/sample:1.0",
        );
        check(
            "registry.example.com/team/plugin:v1.2.3",
            "registry.example.com/team/plugin:v1.2.3 | registry.example.com/team/plugin:v1.2.3",
        );
        check(
            "[::1]:5000/foo:bar",
            "[::1]:5000/foo:bar | [::1]:5000/foo:bar",
        );
        check(
            "[fe80::1]/foo",
            "[fe80::1]/foo:latest | [fe80::1]/foo:latest",
        );
        check(
            &format!("example.com/foo@{H}"),
            &format!("example.com/foo@{H} | example.com/foo@{H}"),
        );
        check(
            &format!("foo:v1@{H}"),
            &format!("docker.io/library/foo:v1@{H} | foo:v1@{H}"),
        );
        check(
            &format!("busybox@{H}"),
            &format!("docker.io/library/busybox@{H} | busybox@{H}"),
        );
        // Docker's quirk: an uppercase first component is taken as a domain.
        check("Foo/bar", "Foo/bar:latest | Foo/bar:latest");
        check(
            "foo_bar",
            "docker.io/library/foo_bar:latest | foo_bar:latest",
        );
        check(
            "foo__bar",
            "docker.io/library/foo__bar:latest | foo__bar:latest",
        );
        check(
            "foo-----bar",
            "docker.io/library/foo-----bar:latest | foo-----bar:latest",
        );
        check("a.b.c", "docker.io/library/a.b.c:latest | a.b.c:latest");
        // Docker would print "0.a/b", which reads back as the domain "0.a".
        check(
            "docker.io/0.a/b",
            "docker.io/0.a/b:latest | docker.io/0.a/b:latest",
        );
        check(
            "localhost",
            "docker.io/library/localhost:latest | localhost:latest",
        );
        // Without a '/', "localhost:5000" is the image localhost with tag 5000.
        check(
            "localhost:5000",
            "docker.io/library/localhost:5000 | localhost:5000",
        );
        check(
            "sub-domain.example.com:443/x",
            "sub-domain.example.com:443/x:latest | sub-domain.example.com:443/x:latest",
        );
        check(
            "busybox:LATEST_1.x-y",
            "docker.io/library/busybox:LATEST_1.x-y | busybox:LATEST_1.x-y",
        );
        check(
            &format!("a:{}", "t".repeat(128)),
            &format!("docker.io/library/a:{0} | a:{0}", "t".repeat(128)),
        );
    }

    #[test]
    fn invalid_references() {
        check("", "err invalid reference \"\": empty reference");
        check(
            "Busybox",
            "err invalid reference \"Busybox\": repository name must be lowercase",
        );
        check(
            "foo/Bar",
            "err invalid reference \"foo/Bar\": repository name must be lowercase",
        );
        check(
            "a//b",
            "err invalid reference \"a//b\": empty path component",
        );
        check(
            "/foo",
            "err invalid reference \"/foo\": empty path component",
        );
        check(
            "foo/",
            "err invalid reference \"foo/\": empty path component",
        );
        check(
            "busybox:",
            "err invalid reference \"busybox:\": empty tag after ':'",
        );
        check(
            "busybox@sha256:abc",
            "err invalid reference \"busybox@sha256:abc\": invalid digest \"sha256:abc\": sha256 needs 64 hex characters, found 3",
        );
        check(
            "busybox@",
            "err invalid reference \"busybox@\": empty digest after '@'",
        );
        check(
            "busybox@md5:d41d8cd98f00b204e9800998ecf8427e",
            "err invalid reference \"busybox@md5:d41d8cd98f00b204e9800998ecf8427e\": invalid digest \"md5:d41d8cd98f00b204e9800998ecf8427e\": unsupported algorithm \"md5\" (supported: sha256, sha512)",
        );
        let rule = "must be lowercase letters and digits, separated by '.', '_', '__' or dashes";
        check(
            "foo..bar",
            &format!(
                "err invalid reference \"foo..bar\": invalid path component \"foo..bar\": {rule}"
            ),
        );
        check(
            "foo___bar",
            &format!(
                "err invalid reference \"foo___bar\": invalid path component \"foo___bar\": {rule}"
            ),
        );
        check(
            "foo._bar",
            &format!(
                "err invalid reference \"foo._bar\": invalid path component \"foo._bar\": {rule}"
            ),
        );
        check(
            "-foo",
            &format!("err invalid reference \"-foo\": invalid path component \"-foo\": {rule}"),
        );
        check(
            "foo-",
            &format!("err invalid reference \"foo-\": invalid path component \"foo-\": {rule}"),
        );
        check(
            "foo bar",
            &format!(
                "err invalid reference \"foo bar\": invalid path component \"foo bar\": {rule}"
            ),
        );
        check(
            "foo:tag:tag2",
            &format!(
                "err invalid reference \"foo:tag:tag2\": invalid path component \"foo:tag\": {rule}"
            ),
        );
        check(
            "foo:bad tag",
            "err invalid reference \"foo:bad tag\": invalid tag \"bad tag\": must match [A-Za-z0-9_][A-Za-z0-9_.-]*",
        );
        check(
            "foo:.tag",
            "err invalid reference \"foo:.tag\": invalid tag \".tag\": must match [A-Za-z0-9_][A-Za-z0-9_.-]*",
        );
        check(
            &format!("a:{}", "t".repeat(129)),
            &format!(
                "err invalid reference \"a:{}\": tag is 129 characters, more than 128",
                "t".repeat(129)
            ),
        );
        let long = format!("example.com/{}", "a".repeat(244));
        check(
            &long,
            &format!(
                "err invalid reference \"{long}\": repository name is 256 characters, more than 255"
            ),
        );
        let id = "276b2c3b5e56c90b0052cd1d4213c6684ff3057e32258ec21e7212bca619a9bc";
        check(
            id,
            &format!(
                "err invalid reference \"{id}\": a 64-character hex string is an ID, not a repository name"
            ),
        );
        check(
            "example.com:port/foo",
            "err invalid reference \"example.com:port/foo\": invalid domain \"example.com:port\": port must be digits",
        );
        check(
            "example.com:/foo",
            "err invalid reference \"example.com:/foo\": invalid domain \"example.com:\": port must be digits",
        );
        check(
            "exa_mple.com/foo",
            "err invalid reference \"exa_mple.com/foo\": invalid domain \"exa_mple.com\": only letters, digits, '-' and '.' are allowed",
        );
        check(
            "-example.com/foo",
            "err invalid reference \"-example.com/foo\": invalid domain \"-example.com\": a domain component cannot start or end with '-'",
        );
        check(
            "example..com/foo",
            "err invalid reference \"example..com/foo\": invalid domain \"example..com\": empty domain component",
        );
        check(
            "[::1/foo",
            "err invalid reference \"[::1/foo\": invalid domain \"[::1\": unclosed '['",
        );
        check(
            "[zz::1]/foo",
            "err invalid reference \"[zz::1]/foo\": invalid domain \"[zz::1]\": invalid IPv6 address",
        );
        check(
            "foo@sha256:",
            "err invalid reference \"foo@sha256:\": invalid digest \"sha256:\": sha256 needs 64 hex characters, found 0",
        );
        check(
            ":tag",
            "err invalid reference \":tag\": empty repository name",
        );
        check(
            &format!("a@b@{H}"),
            &format!(
                "err invalid reference \"a@b@{H}\": invalid digest \"b@{H}\": unsupported algorithm \"b@sha256\" (supported: sha256, sha512)"
            ),
        );
    }

    #[test]
    fn accessors_and_edits() {
        let r = Reference::parse("localhost:5000/a/b:t").unwrap();
        assert_eq!(
            (r.domain(), r.path(), r.tag()),
            ("localhost:5000", "a/b", Some("t"))
        );
        assert_eq!(r.name(), "localhost:5000/a/b");
        let pinned = r.with_digest(H.parse().unwrap());
        assert_eq!(pinned.to_string(), format!("localhost:5000/a/b:t@{H}"));
        assert_eq!(
            pinned.without_tag_or_digest().to_string(),
            "localhost:5000/a/b"
        );
        assert_eq!(
            r.with_tag("v2").unwrap().familiar(),
            "localhost:5000/a/b:v2"
        );
        assert_eq!(
            r.with_tag("-x").unwrap_err().to_string(),
            "invalid reference \"localhost:5000/a/b:-x\": invalid tag \"-x\": must match [A-Za-z0-9_][A-Za-z0-9_.-]*"
        );
        let n = Reference::parse_normalized("busybox").unwrap();
        assert_eq!(n.tag(), None);
        assert_eq!(n.to_string(), "docker.io/library/busybox");
    }
}
