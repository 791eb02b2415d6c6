//! Pulling: manifests (with index → platform), blobs streamed into a
//! caller's sink with size and digest verified on the fly, resumed with
//! `Range` when a connection is cut.

use std::future::Future;
use std::io;
use std::sync::Arc;

use pluginctl_oci::{
    Descriptor, Digest, Digester, Document, Manifest, MediaType, Platform, Reference,
};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

use crate::auth::Scope;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::hosts::Need;
use crate::progress::{BYTES_EVENT_STEP, Event};
use crate::transport::{Bounded, TransportError, describe, read_bounded};

/// The manifest types asked for, most wanted first (what Docker sends).
pub const MANIFEST_ACCEPT: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
];

/// The narrower list for registries that refuse a list with indexes in it.
const MANIFEST_ACCEPT_NARROW: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
];

/// A manifest fetched and verified, with the index that led to it.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The reference asked for.
    pub reference: Reference,
    /// The index (or manifest list) the tag pointed at, when it was one:
    /// its descriptor and bytes.
    pub index: Option<(Descriptor, Vec<u8>)>,
    /// The manifest's descriptor (media type, digest, size).
    pub descriptor: Descriptor,
    /// The manifest's bytes, exactly as the registry sent them.
    pub bytes: Vec<u8>,
    /// The parsed manifest.
    pub manifest: Manifest,
}

/// Where a pull puts its blobs. Called from several tasks at once.
pub trait BlobSinks: Send + Sync + 'static {
    /// The writer for one blob.
    type Sink: AsyncWrite + Unpin + Send;
    /// A sink for `desc`, and the digester of the bytes it already holds (a
    /// resumed download; `None` to start from zero). `Ok(None)`: the caller
    /// already has this blob, skip it.
    fn open(
        &self,
        desc: &Descriptor,
    ) -> impl Future<Output = io::Result<Option<(Self::Sink, Option<Digester>)>>> + Send;
    /// The blob in `sink` verified: make it visible. Not called on failure.
    fn commit(
        &self,
        desc: &Descriptor,
        sink: Self::Sink,
    ) -> impl Future<Output = io::Result<()>> + Send;
    /// The bytes in `sink` did not verify (digest or size): a later pull
    /// must not resume from them. The default drops the sink.
    fn reject(
        &self,
        desc: &Descriptor,
        sink: Self::Sink,
    ) -> impl Future<Output = io::Result<()>> + Send {
        let _ = desc;
        drop(sink);
        std::future::ready(Ok(()))
    }
}

/// A URL that cannot be built from a repository path (never for a parsed
/// reference; kept as an error rather than a panic).
pub(crate) fn bad_url(e: &impl std::fmt::Display) -> Error {
    Error::Protocol {
        what: "building a request URL".to_owned(),
        message: e.to_string(),
    }
}

/// The `Content-Length` header as sent (reqwest reports a HEAD's body as empty).
fn header_length(resp: &reqwest::Response) -> Option<u64> {
    resp.headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// What a manifest is fetched by: the reference's digest when it has one
/// (content pinned), else its tag.
fn manifest_ref(reference: &Reference) -> String {
    reference.digest().map_or_else(
        || {
            reference
                .tag()
                .unwrap_or(pluginctl_oci::reference::DEFAULT_TAG)
                .to_owned()
        },
        ToString::to_string,
    )
}

/// A short name for a repository in messages: `127.0.0.1:5000/foo/bar`.
/// A manifest by digest is pulled; by tag, resolved.
fn manifest_need(r: &Reference) -> Need {
    if r.digest().is_some() {
        Need::Pull
    } else {
        Need::Resolve
    }
}

pub(crate) fn repo_name(r: &Reference) -> String {
    format!("{}/{}", r.domain(), r.path())
}

fn media_type_of(resp: &reqwest::Response) -> Option<MediaType> {
    let ct = resp.headers().get(CONTENT_TYPE)?.to_str().ok()?;
    let ct = ct.split(';').next().unwrap_or(ct).trim();
    (!ct.is_empty()).then(|| MediaType::parse(ct))
}

impl Client {
    /// Fetches the manifest or index `reference` names (by digest if it has
    /// one, else by tag), verified against the reference's digest or the
    /// registry's `Docker-Content-Digest`, within the manifest size limit.
    pub async fn get_manifest(
        &self,
        reference: &Reference,
    ) -> Result<(Descriptor, Vec<u8>, Document)> {
        self.get_manifest_accepting(reference, MANIFEST_ACCEPT)
            .await
    }

    async fn get_manifest_accepting(
        &self,
        reference: &Reference,
        accept: &[&str],
    ) -> Result<(Descriptor, Vec<u8>, Document)> {
        let what = format!("manifest {reference}");
        let host = Client::api_host(reference.domain());
        let path = reference.path().to_owned();
        let r = manifest_ref(reference);
        let need = manifest_need(reference);
        let scope = Scope::pull(&path);
        let mut accept_list = accept.join(", ");
        let mut narrowed = false;
        let resp = loop {
            let a = accept_list.clone();
            let p = path.clone();
            let rr = r.clone();
            let resp = self
                .send(
                    &what,
                    reference.domain(),
                    need,
                    &scope,
                    true,
                    &move |http, base| {
                        let url = base
                            .join(&format!("{p}/manifests/{rr}"))
                            .map_err(|e| bad_url(&e))?;
                        Ok(http.get(url).header(ACCEPT, a.clone()))
                    },
                )
                .await?;
            let s = resp.status();
            if !narrowed
                && (s == StatusCode::BAD_REQUEST
                    || s == StatusCode::NOT_ACCEPTABLE
                    || s == StatusCode::UNSUPPORTED_MEDIA_TYPE)
            {
                narrowed = true;
                accept_list = MANIFEST_ACCEPT_NARROW.join(", ");
                continue;
            }
            break resp;
        };
        if !resp.status().is_success() {
            return Err(Client::status_error(&what, resp).await);
        }
        let content_type = media_type_of(&resp);
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let limit = self.inner.manifest_limit;
        let bytes = read_bounded(resp, limit).await.map_err(|e| match e {
            Bounded::Over { seen, announced } => Error::TooLarge {
                what: what.clone(),
                size: seen,
                at_least: !announced,
                limit: limit as u64,
            },
            Bounded::Transport(message) => Error::Connect {
                what: what.clone(),
                host: host.to_owned(),
                message,
            },
        })?;
        let expected = match (reference.digest(), &header_digest) {
            (Some(d), _) => Some(d.clone()),
            (None, Some(h)) => Some(Digest::parse(h).map_err(|source| Error::Oci {
                what: format!("Docker-Content-Digest of {what}"),
                source,
            })?),
            (None, None) => None,
        };
        let digest = match &expected {
            Some(e) => {
                let actual = Digest::of_bytes_with(e.algorithm(), &bytes);
                if &actual != e {
                    return Err(Error::DigestMismatch {
                        what,
                        expected: e.clone(),
                        actual,
                    });
                }
                actual
            }
            None => Digest::of_bytes(&bytes),
        };
        let declared = content_type.filter(|m| m.is_manifest() || m.is_index());
        let doc = Document::parse(declared.as_ref(), &bytes).map_err(|source| Error::Oci {
            what: what.clone(),
            source,
        })?;
        let media_type = match &doc {
            Document::Manifest(m) => m.media_type.clone(),
            Document::Index(i) => i.media_type.clone(),
        }
        .or(declared)
        .unwrap_or(match &doc {
            Document::Manifest(_) => MediaType::OciManifest,
            Document::Index(_) => MediaType::OciIndex,
        });
        let desc = Descriptor::new(media_type, digest, bytes.len() as u64);
        Ok((desc, bytes, doc))
    }

    /// `HEAD` of a manifest: its descriptor, or `None` when the registry
    /// does not have it. Cheap (no body); used to check a tag before a pull.
    pub async fn head_manifest(&self, reference: &Reference) -> Result<Option<Descriptor>> {
        let what = format!("manifest {reference}");
        let path = reference.path().to_owned();
        let r = manifest_ref(reference);
        let accept = MANIFEST_ACCEPT.join(", ");
        let resp = self
            .send(
                &what,
                reference.domain(),
                manifest_need(reference),
                &Scope::pull(&path),
                true,
                &move |http, base| {
                    let url = base
                        .join(&format!("{path}/manifests/{r}"))
                        .map_err(|e| bad_url(&e))?;
                    Ok(http.head(url).header(ACCEPT, accept.clone()))
                },
            )
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(Client::status_error(&what, resp).await);
        }
        let media_type = media_type_of(&resp).ok_or_else(|| Error::Protocol {
            what: what.clone(),
            message: "HEAD answered without a Content-Type".to_owned(),
        })?;
        let digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(Digest::parse)
            .transpose()
            .map_err(|source| Error::Oci {
                what: what.clone(),
                source,
            })?
            .or_else(|| reference.digest().cloned())
            .ok_or_else(|| Error::Protocol {
                what: what.clone(),
                message: "HEAD answered without Docker-Content-Digest".to_owned(),
            })?;
        if let Some(want) = reference.digest()
            && *want != digest
        {
            return Err(Error::DigestMismatch {
                what,
                expected: want.clone(),
                actual: digest,
            });
        }
        let size = header_length(&resp).ok_or_else(|| Error::Protocol {
            what: what.clone(),
            message: "HEAD answered without a Content-Length".to_owned(),
        })?;
        Ok(Some(Descriptor::new(media_type, digest, size)))
    }

    /// Resolves `reference` to an image manifest: an index is followed to the
    /// manifest for `platform` (this host's when `None`). Every document is
    /// verified against the digest and size that led to it.
    pub async fn resolve(
        &self,
        reference: &Reference,
        platform: Option<&Platform>,
    ) -> Result<Resolved> {
        let (desc, bytes, doc) = self.get_manifest(reference).await?;
        match doc {
            Document::Manifest(manifest) => Ok(Resolved {
                reference: reference.clone(),
                index: None,
                descriptor: desc,
                bytes,
                manifest,
            }),
            Document::Index(index) => {
                let wanted = platform.cloned().unwrap_or_else(Platform::host);
                let child = index.select(&wanted).map_err(|source| Error::Oci {
                    what: format!("index {reference}"),
                    source,
                })?;
                let child = child.clone();
                let child_ref = reference.with_digest(child.digest.clone());
                let (got, cbytes, cdoc) = self.get_manifest(&child_ref).await?;
                let what = format!("manifest {child_ref}");
                if got.size != child.size {
                    return Err(Error::SizeMismatch {
                        what,
                        expected: child.size,
                        actual: got.size,
                        more: false,
                    });
                }
                // The index's media type for the child must agree with the child.
                let checked =
                    Document::parse(Some(&child.media_type), &cbytes).map_err(|source| {
                        Error::Oci {
                            what: what.clone(),
                            source,
                        }
                    })?;
                let (Document::Manifest(manifest), Document::Manifest(_)) = (checked, cdoc) else {
                    return Err(Error::Protocol {
                        what,
                        message:
                            "the index points at another index; nested indexes are not followed"
                                .to_owned(),
                    });
                };
                Ok(Resolved {
                    reference: reference.clone(),
                    index: Some((desc, bytes)),
                    descriptor: Descriptor::new(
                        child.media_type.clone(),
                        child.digest.clone(),
                        child.size,
                    ),
                    bytes: cbytes,
                    manifest,
                })
            }
        }
    }

    /// Whether the repository of `repo` has blob `digest`: its size, or `None`.
    pub async fn blob_exists(&self, repo: &Reference, digest: &Digest) -> Result<Option<u64>> {
        self.blob_exists_scoped(repo, digest, &Scope::pull(repo.path()))
            .await
    }

    pub(crate) async fn blob_exists_scoped(
        &self,
        repo: &Reference,
        digest: &Digest,
        scope: &Scope,
    ) -> Result<Option<u64>> {
        let what = format!("blob {digest} in {}", repo_name(repo));
        let path = repo.path().to_owned();
        let d = digest.to_string();
        let resp = self
            .send(
                &what,
                repo.domain(),
                scope.need(),
                scope,
                true,
                &move |http, base| {
                    let url = base
                        .join(&format!("{path}/blobs/{d}"))
                        .map_err(|e| bad_url(&e))?;
                    Ok(http.head(url))
                },
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            // reqwest reports a HEAD's body as empty: read the header itself.
            s if s.is_success() => header_length(&resp)
                .map(Some)
                .ok_or_else(|| Error::Protocol {
                    what,
                    message: "HEAD answered without a Content-Length".to_owned(),
                }),
            _ => Err(Client::status_error(&what, resp).await),
        }
    }

    /// Fetches a small blob (a config) into memory, verified. `limit` caps it.
    pub async fn fetch_blob_bytes(
        &self,
        repo: &Reference,
        desc: &Descriptor,
        limit: u64,
    ) -> Result<Vec<u8>> {
        if desc.size > limit {
            return Err(Error::TooLarge {
                what: format!("blob {} in {}", desc.digest, repo_name(repo)),
                size: desc.size,
                at_least: false,
                limit,
            });
        }
        let mut out = Vec::with_capacity(usize::try_from(desc.size).unwrap_or(0));
        self.fetch_blob(repo, desc, &mut out, None).await?;
        Ok(out)
    }

    /// Streams blob `desc` of `repo` into `sink`, verifying its size and
    /// digest as it goes. `resume` is the digester of the bytes `sink`
    /// already holds (its `len()` is the offset asked with `Range`); `None`
    /// starts from zero. A connection cut mid-blob is resumed from where it
    /// stopped, within the retry policy.
    ///
    /// The bytes in `sink` are verified only when this returns `Ok`: on an
    /// error the caller must discard them (or keep them to resume only after
    /// a transport error, never after a digest or size mismatch).
    pub async fn fetch_blob<W: AsyncWrite + Unpin + Send + ?Sized>(
        &self,
        repo: &Reference,
        desc: &Descriptor,
        sink: &mut W,
        resume: Option<Digester>,
    ) -> Result<()> {
        let _permit = self.transfer_permit().await?;
        self.fetch_blob_held(repo, desc, sink, resume).await
    }

    /// One of the client's transfer slots.
    pub(crate) async fn transfer_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        self.inner
            .transfers
            .acquire()
            .await
            .map_err(|_| Error::Config("transfer limit closed".to_owned()))
    }

    /// [`Client::fetch_blob`] with a transfer slot already held.
    async fn fetch_blob_held<W: AsyncWrite + Unpin + Send + ?Sized>(
        &self,
        repo: &Reference,
        desc: &Descriptor,
        sink: &mut W,
        resume: Option<Digester>,
    ) -> Result<()> {
        let what = format!("blob {} in {}", desc.digest, repo_name(repo));
        let host = Client::api_host(repo.domain());
        let mut digester = resume.unwrap_or_else(|| Digester::new(desc.digest.algorithm()));
        if digester.algorithm() != desc.digest.algorithm() {
            return Err(Error::Config(format!(
                "{what}: resume digester uses {} for a {} digest",
                digester.algorithm(),
                desc.digest.algorithm()
            )));
        }
        let size = desc.size;
        let mut offset = digester.len();
        if offset > size {
            return Err(Error::SizeMismatch {
                what,
                expected: size,
                actual: offset,
                more: true,
            });
        }
        self.emit(&Event::Started {
            digest: desc.digest.clone(),
            size,
            offset,
        });
        let scope = Scope::pull(repo.path());
        let mut cuts = 0u32;
        let mut last_event = offset;
        while offset < size || size == 0 {
            let path = repo.path().to_owned();
            let d = desc.digest.to_string();
            let mt = desc.media_type.to_string();
            let from = offset;
            let resp = self
                .send(
                    &what,
                    repo.domain(),
                    Need::Pull,
                    &scope,
                    true,
                    &move |http, base| {
                        let url = base
                            .join(&format!("{path}/blobs/{d}"))
                            .map_err(|e| bad_url(&e))?;
                        let mut r = http.get(url).header(ACCEPT, format!("{mt}, */*"));
                        if from > 0 {
                            r = r.header(RANGE, format!("bytes={from}-"));
                        }
                        Ok(r)
                    },
                )
                .await?;
            let status = resp.status();
            let mut skip = 0u64;
            match status {
                StatusCode::OK => {
                    skip = offset;
                    if let Some(n) = resp.content_length()
                        && n != size
                    {
                        return Err(Error::SizeMismatch {
                            what,
                            expected: size,
                            actual: n,
                            more: false,
                        });
                    }
                }
                StatusCode::PARTIAL_CONTENT => {
                    let range = resp
                        .headers()
                        .get(CONTENT_RANGE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let start = range
                        .strip_prefix("bytes ")
                        .and_then(|r| r.split('-').next())
                        .and_then(|s| s.parse::<u64>().ok());
                    if start != Some(offset) {
                        return Err(Error::Protocol {
                            what,
                            message: format!(
                                "asked for bytes from {offset}, got Content-Range {range:?}"
                            ),
                        });
                    }
                }
                StatusCode::RANGE_NOT_SATISFIABLE if offset > 0 => {
                    return Err(Error::Protocol {
                        what,
                        message: format!("the registry cannot resume at byte {offset} (HTTP 416)"),
                    });
                }
                _ => return Err(Client::status_error(&what, resp).await),
            }
            let mut resp = resp;
            let mut cut = None;
            loop {
                match resp.chunk().await {
                    Ok(Some(mut chunk)) => {
                        if skip > 0 {
                            let n = skip.min(chunk.len() as u64);
                            let _ = chunk.split_to(usize::try_from(n).unwrap_or(usize::MAX));
                            skip -= n;
                            if chunk.is_empty() {
                                continue;
                            }
                        }
                        let n = chunk.len() as u64;
                        if offset + n > size {
                            return Err(Error::SizeMismatch {
                                what,
                                expected: size,
                                actual: offset + n,
                                more: true,
                            });
                        }
                        digester.update(&chunk);
                        sink.write_all(&chunk).await.map_err(|source| Error::Io {
                            what: what.clone(),
                            source,
                        })?;
                        offset += n;
                        if offset - last_event >= BYTES_EVENT_STEP || offset == size {
                            last_event = offset;
                            self.emit(&Event::Bytes {
                                digest: desc.digest.clone(),
                                done: offset,
                                total: size,
                            });
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        cut = Some(e);
                        break;
                    }
                }
            }
            match cut {
                None if offset < size => {
                    // The body ended cleanly, short: the server says this is
                    // the whole blob. That is a lie about the descriptor, not
                    // a network fault: retrying will not help.
                    return Err(Error::SizeMismatch {
                        what,
                        expected: size,
                        actual: offset,
                        more: false,
                    });
                }
                None => break,
                Some(e) => {
                    let err = TransportError(e);
                    if cuts >= self.retry_policy().max_retries {
                        return Err(err.into_error(&what, host));
                    }
                    let reason = format!("transfer cut at byte {offset}: {}", describe(&err.0));
                    self.back_off(&what, &mut cuts, reason, None).await;
                }
            }
            if size == 0 {
                break;
            }
        }
        sink.flush().await.map_err(|source| Error::Io {
            what: what.clone(),
            source,
        })?;
        let actual = digester.finish();
        if actual != desc.digest {
            return Err(Error::DigestMismatch {
                what,
                expected: desc.digest.clone(),
                actual,
            });
        }
        self.emit(&Event::Done {
            digest: desc.digest.clone(),
        });
        Ok(())
    }

    /// Pulls an image: resolves `reference` for `platform`, then fetches the
    /// config and every layer into `sinks` ([`Client::fetch_blobs`]).
    /// Returns the resolved manifest; the manifest and index bytes are for
    /// the caller to store.
    pub async fn pull<S: BlobSinks>(
        &self,
        reference: &Reference,
        platform: Option<&Platform>,
        sinks: Arc<S>,
    ) -> Result<Resolved> {
        let resolved = self.resolve(reference, platform).await?;
        let blobs: Vec<Descriptor> = std::iter::once(&resolved.manifest.config)
            .chain(&resolved.manifest.layers)
            .cloned()
            .collect();
        self.fetch_blobs(reference, &blobs, sinks).await?;
        Ok(resolved)
    }

    /// Fetches `blobs` of `reference`'s repository into `sinks`, at most the
    /// client's transfer limit at once (3 by default, as Docker), each
    /// committed only after it verified; a blob whose bytes did not verify
    /// is handed back to [`BlobSinks::reject`]. Blobs the sinks already
    /// have are skipped, a digest listed twice is fetched once, and the
    /// first failure stops the others. The one pull loop of the crate.
    pub async fn fetch_blobs<S: BlobSinks>(
        &self,
        reference: &Reference,
        blobs: &[Descriptor],
        sinks: Arc<S>,
    ) -> Result<()> {
        let mut unique: Vec<Descriptor> = Vec::new();
        for d in blobs {
            if !unique.iter().any(|b| b.digest == d.digest) {
                unique.push(d.clone());
            }
        }
        let mut tasks = tokio::task::JoinSet::new();
        let repo = reference.without_tag_or_digest();
        for desc in unique {
            let client = self.clone();
            let sinks = Arc::clone(&sinks);
            let repo = repo.clone();
            tasks.spawn(async move { client.pull_one(&repo, &desc, &*sinks).await });
        }
        let mut first_err = None;
        while let Some(r) = tasks.join_next().await {
            let r = r.unwrap_or_else(|e| {
                Err(Error::Io {
                    what: format!("pull of {reference}"),
                    source: io::Error::other(e.to_string()),
                })
            });
            if let Err(e) = r
                && first_err.is_none()
            {
                // Stop the others: one failure fails the pull.
                tasks.abort_all();
                first_err = Some(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn pull_one<S: BlobSinks>(
        &self,
        repo: &Reference,
        desc: &Descriptor,
        sinks: &S,
    ) -> Result<()> {
        let what = format!("blob {} in {}", desc.digest, repo_name(repo));
        let io_err = |source| Error::Io {
            what: what.clone(),
            source,
        };
        // The slot is taken before the sink is opened: a manifest with
        // thousands of layers never has more sinks open than the limit.
        let _permit = self.transfer_permit().await?;
        let Some((mut sink, resume)) = sinks.open(desc).await.map_err(io_err)? else {
            self.emit(&Event::Exists {
                digest: desc.digest.clone(),
            });
            return Ok(());
        };
        match self.fetch_blob_held(repo, desc, &mut sink, resume).await {
            Ok(()) => sinks.commit(desc, sink).await.map_err(io_err),
            Err(e @ (Error::DigestMismatch { .. } | Error::SizeMismatch { .. })) => {
                // Bytes that did not verify must never be resumed from.
                sinks.reject(desc, sink).await.map_err(io_err)?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}
