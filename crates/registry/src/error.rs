//! Errors: every one names the registry host, the reference or the digest
//! involved, and carries the registry's own error envelope when it sent one.

use std::fmt;

use pluginctl_oci::Digest;
use serde::Deserialize;

/// A result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error codes of the distribution spec (plus Docker's `TOOMANYREQUESTS`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `UNAUTHORIZED`: authentication required or failed.
    Unauthorized,
    /// `DENIED`: authenticated but not allowed.
    Denied,
    /// `NAME_UNKNOWN`: the repository does not exist.
    NameUnknown,
    /// `NAME_INVALID`: the repository name is not valid.
    NameInvalid,
    /// `MANIFEST_UNKNOWN`: no manifest for that tag or digest.
    ManifestUnknown,
    /// `MANIFEST_INVALID`: the registry refused a manifest.
    ManifestInvalid,
    /// `MANIFEST_BLOB_UNKNOWN`: a manifest names a blob the registry lacks.
    ManifestBlobUnknown,
    /// `BLOB_UNKNOWN`: no such blob in that repository.
    BlobUnknown,
    /// `BLOB_UPLOAD_UNKNOWN`: the upload session is gone.
    BlobUploadUnknown,
    /// `BLOB_UPLOAD_INVALID`: the upload was refused.
    BlobUploadInvalid,
    /// `DIGEST_INVALID`: what was uploaded does not match its digest.
    DigestInvalid,
    /// `SIZE_INVALID`: what was uploaded does not match its length.
    SizeInvalid,
    /// `TAG_INVALID`: the tag is not valid.
    TagInvalid,
    /// `UNSUPPORTED`: the operation is not supported.
    Unsupported,
    /// `TOOMANYREQUESTS`: rate limited.
    TooManyRequests,
    /// Any other code, kept verbatim.
    Other(String),
}

impl ErrorCode {
    /// Parses a code string of an error envelope.
    pub fn parse(code: &str) -> ErrorCode {
        match code {
            "UNAUTHORIZED" => ErrorCode::Unauthorized,
            "DENIED" => ErrorCode::Denied,
            "NAME_UNKNOWN" => ErrorCode::NameUnknown,
            "NAME_INVALID" => ErrorCode::NameInvalid,
            "MANIFEST_UNKNOWN" => ErrorCode::ManifestUnknown,
            "MANIFEST_INVALID" => ErrorCode::ManifestInvalid,
            "MANIFEST_BLOB_UNKNOWN" => ErrorCode::ManifestBlobUnknown,
            "BLOB_UNKNOWN" => ErrorCode::BlobUnknown,
            "BLOB_UPLOAD_UNKNOWN" => ErrorCode::BlobUploadUnknown,
            "BLOB_UPLOAD_INVALID" => ErrorCode::BlobUploadInvalid,
            "DIGEST_INVALID" => ErrorCode::DigestInvalid,
            "SIZE_INVALID" => ErrorCode::SizeInvalid,
            "TAG_INVALID" => ErrorCode::TagInvalid,
            "UNSUPPORTED" => ErrorCode::Unsupported,
            "TOOMANYREQUESTS" => ErrorCode::TooManyRequests,
            other => ErrorCode::Other(other.to_owned()),
        }
    }

    /// The wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Denied => "DENIED",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::ManifestInvalid => "MANIFEST_INVALID",
            ErrorCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            ErrorCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::TagInvalid => "TAG_INVALID",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::TooManyRequests => "TOOMANYREQUESTS",
            ErrorCode::Other(s) => s,
        }
    }

    /// The code a bare status implies when the registry sent no envelope.
    pub(crate) fn from_status(status: u16) -> Option<ErrorCode> {
        match status {
            401 => Some(ErrorCode::Unauthorized),
            403 => Some(ErrorCode::Denied),
            429 => Some(ErrorCode::TooManyRequests),
            _ => None,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The spec's codes read better in lower case with spaces ("manifest unknown").
        f.write_str(&self.as_str().to_ascii_lowercase().replace('_', " "))
    }
}

/// The first entry of a registry's `{"errors":[{code,message,detail}]}` envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The error code.
    pub code: ErrorCode,
    /// The registry's message, trimmed to one line.
    pub message: String,
}

#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(default)]
    errors: Vec<RawEntry>,
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

impl Envelope {
    /// Parses an error body; `None` when it is not an envelope.
    pub fn parse(body: &[u8]) -> Option<Envelope> {
        let raw: RawEnvelope = serde_json::from_slice(body).ok()?;
        let first = raw.errors.into_iter().next()?;
        Some(Envelope {
            code: ErrorCode::parse(&first.code),
            message: one_line(&first.message, 200),
        })
    }
}

/// `s` on one line, at most `max` characters.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out.trim().to_owned()
}

/// What can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The registry answered with an error status.
    #[error("{what}: {}", status_text(*.status, .envelope.as_ref()))]
    Registry {
        /// What was asked for: `GET manifest 127.0.0.1:5000/foo:1.0`, a digest…
        what: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error envelope, when it sent one.
        envelope: Option<Envelope>,
    },
    /// The connection failed (after the retries allowed).
    #[error("{what}: cannot reach {host}: {message}")]
    Connect {
        /// What was asked for.
        what: String,
        /// `host[:port]`.
        host: String,
        /// The transport's explanation.
        message: String,
    },
    /// TLS failed: a certificate was not trusted, or the peer does not speak TLS.
    #[error(
        "{what}: TLS with {host} failed: {message} (add its CA certificate, or mark the registry insecure if you trust the network)"
    )]
    Tls {
        /// What was asked for.
        what: String,
        /// `host[:port]`.
        host: String,
        /// rustls' explanation.
        message: String,
    },
    /// Content did not match its digest.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was fetched.
        what: String,
        /// The digest that was asked for.
        expected: Digest,
        /// The digest of what arrived.
        actual: Digest,
    },
    /// Content did not have its declared length.
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}{}", if *.more { " or more" } else { "" })]
    SizeMismatch {
        /// What was fetched.
        what: String,
        /// The size of the descriptor.
        expected: u64,
        /// The bytes that arrived (a lower bound when `more`).
        actual: u64,
        /// The server sent more than `actual` and was cut off.
        more: bool,
    },
    /// A response was larger than its limit.
    #[error("{what}: {}{size} bytes is over the limit of {limit}", if *.at_least { "at least " } else { "" })]
    TooLarge {
        /// What was fetched.
        what: String,
        /// The size announced, or the bytes received before stopping.
        size: u64,
        /// `size` is what arrived before the read stopped, not the whole.
        at_least: bool,
        /// The limit.
        limit: u64,
    },
    /// The registry broke the protocol (missing header, bad JSON, wrong range).
    #[error("{what}: {message}")]
    Protocol {
        /// What was asked for.
        what: String,
        /// What was wrong.
        message: String,
    },
    /// Authentication could not be done (token endpoint failed, bad challenge).
    #[error("{what}: authentication failed: {message}")]
    Auth {
        /// What was asked for.
        what: String,
        /// What went wrong.
        message: String,
    },
    /// Credentials could not be read (docker config, credential helper).
    #[error("credentials for {host}: {message}")]
    Credentials {
        /// The registry host.
        host: String,
        /// What went wrong.
        message: String,
    },
    /// A wire type did not parse.
    #[error("{what}: {source}")]
    Oci {
        /// What was parsed.
        what: String,
        /// Why.
        #[source]
        source: pluginctl_oci::Error,
    },
    /// The caller's sink or source failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being transferred.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The caller's configuration is unusable (bad CA certificate…).
    #[error("registry client configuration: {0}")]
    Config(String),
}

fn status_text(status: u16, envelope: Option<&Envelope>) -> String {
    match envelope {
        Some(e) if e.message.is_empty() => format!("{} (HTTP {status})", e.code),
        Some(e) => format!("{}: {} (HTTP {status})", e.code, e.message),
        None => match ErrorCode::from_status(status) {
            Some(code) => format!("{code} (HTTP {status})"),
            None => format!("HTTP {status}"),
        },
    }
}

impl Error {
    /// The registry's error code, from its envelope or implied by the status.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Registry {
                status, envelope, ..
            } => envelope
                .as_ref()
                .map(|e| e.code.clone())
                .or_else(|| ErrorCode::from_status(*status)),
            _ => None,
        }
    }

    /// The HTTP status, when the registry answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Registry { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when the registry refused who we are: an authentication
    /// failure, or its `UNAUTHORIZED`/`DENIED` answer (credentials missing
    /// or wrong; `login` is the remedy).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Error::Auth { .. })
            || matches!(
                self.code(),
                Some(ErrorCode::Unauthorized | ErrorCode::Denied)
            )
    }

    /// True for a 404 (whatever the envelope says).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}
