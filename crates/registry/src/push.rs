//! Pushing: blobs (skipped when present, mounted across repositories when
//! possible, uploaded in one `PUT` or in chunks) and manifests.

use std::io::{self, SeekFrom};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pluginctl_oci::{Descriptor, Digest, MediaType, Reference};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{StatusCode, Url};
use tokio::io::{AsyncRead, AsyncReadExt as _, ReadBuf};

use crate::auth::Scope;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::hosts::Need;
use crate::progress::{BYTES_EVENT_STEP, Event, ProgressFn};
use crate::pull::{bad_url, repo_name};

/// Where the bytes of a blob to push come from. Opened again for each
/// attempt and each chunk, so it must be re-readable.
pub trait BlobSource: Send + Sync {
    /// A reader positioned at byte `offset` of the blob.
    fn open(&self, offset: u64) -> io::Result<Box<dyn AsyncRead + Send + Unpin>>;
}

/// A blob in a file.
#[derive(Debug, Clone)]
pub struct FileSource(pub PathBuf);

impl BlobSource for FileSource {
    fn open(&self, offset: u64) -> io::Result<Box<dyn AsyncRead + Send + Unpin>> {
        use std::io::Seek as _;
        let mut f = std::fs::File::open(&self.0)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.0.display())))?;
        f.seek(SeekFrom::Start(offset))?;
        let f = tokio::fs::File::from_std(f);
        Ok(Box::new(tokio::io::BufReader::with_capacity(1 << 20, f)))
    }
}

/// A blob in memory.
#[derive(Debug, Clone)]
pub struct BytesSource(pub Arc<[u8]>);

impl BlobSource for BytesSource {
    fn open(&self, offset: u64) -> io::Result<Box<dyn AsyncRead + Send + Unpin>> {
        let start = usize::try_from(offset)
            .ok()
            .filter(|&o| o <= self.0.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset past the end"))?;
        Ok(Box::new(io::Cursor::new(SliceFrom(
            Arc::clone(&self.0),
            start,
        ))))
    }
}

struct SliceFrom(Arc<[u8]>, usize);

impl AsRef<[u8]> for SliceFrom {
    fn as_ref(&self) -> &[u8] {
        &self.0[self.1..]
    }
}

/// How a blob got to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// It was already there.
    Exists,
    /// Mounted from another repository of the same registry.
    Mounted,
    /// Uploaded.
    Uploaded,
}

/// Counts bytes as the body is read, for progress events.
struct Counting {
    inner: Box<dyn AsyncRead + Send + Unpin>,
    done: u64,
    last: u64,
    total: u64,
    digest: Digest,
    progress: Option<ProgressFn>,
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            let n = (buf.filled().len() - before) as u64;
            self.done += n;
            if self.done - self.last >= BYTES_EVENT_STEP || (self.done == self.total && n > 0) {
                self.last = self.done;
                if let Some(p) = &self.progress {
                    p(&Event::Bytes {
                        digest: self.digest.clone(),
                        done: self.done,
                        total: self.total,
                    });
                }
            }
        }
        r
    }
}

fn stream_body(reader: Box<dyn AsyncRead + Send + Unpin>, len: u64) -> reqwest::Body {
    let taken = reader.take(len);
    reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
        taken,
        256 << 10,
    ))
}

fn with_digest(mut url: Url, digest: &Digest) -> Url {
    url.query_pairs_mut().append_pair("digest", digest.as_str());
    url
}

impl Client {
    /// Pushes blob `desc` to `repo` from `source`: nothing when the registry
    /// has it (`HEAD`), a cross-repository mount when `mount_from` (a
    /// repository path on the same registry) has it, else an upload in one
    /// `PUT` or in chunks (see [`ClientBuilder::chunk_size`]).
    ///
    /// [`ClientBuilder::chunk_size`]: crate::ClientBuilder::chunk_size
    pub async fn push_blob(
        &self,
        repo: &Reference,
        desc: &Descriptor,
        source: &dyn BlobSource,
        mount_from: Option<&str>,
    ) -> Result<Pushed> {
        let _permit = self
            .inner
            .transfers
            .acquire()
            .await
            .map_err(|_| Error::Config("transfer limit closed".to_owned()))?;
        let what = format!("push of blob {} to {}", desc.digest, repo_name(repo));
        let mut scope = Scope::push(repo.path());
        if let Some(from) = mount_from.filter(|f| *f != repo.path()) {
            scope = scope.and_pull(from);
        }
        if self
            .blob_exists_scoped(repo, &desc.digest, &scope)
            .await?
            .is_some()
        {
            self.emit(&Event::Exists {
                digest: desc.digest.clone(),
            });
            return Ok(Pushed::Exists);
        }
        // An upload session that breaks cannot be resumed reliably across
        // registries: start a fresh one, a bounded number of times.
        let mut attempt = 0;
        loop {
            match self
                .upload_once(repo, desc, source, mount_from, &scope, &what)
                .await
            {
                Ok(p) => return Ok(p),
                Err(e) if attempt < self.retry_policy().max_retries && retryable(&e) => {
                    self.back_off(&what, &mut attempt, e.to_string(), None)
                        .await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn upload_once(
        &self,
        repo: &Reference,
        desc: &Descriptor,
        source: &dyn BlobSource,
        mount_from: Option<&str>,
        scope: &Scope,
        what: &str,
    ) -> Result<Pushed> {
        let path = repo.path().to_owned();
        let digest = desc.digest.clone();
        let mount = mount_from.filter(|f| *f != path).map(str::to_owned);
        let (p, d, m) = (path.clone(), digest.clone(), mount.clone());
        let resp = self
            .send(
                what,
                repo.domain(),
                Need::Push,
                scope,
                true,
                &move |http, base| {
                    let mut url = base
                        .join(&format!("{p}/blobs/uploads/"))
                        .map_err(|e| bad_url(&e))?;
                    if let Some(from) = &m {
                        url.query_pairs_mut()
                            .append_pair("mount", d.as_str())
                            .append_pair("from", from);
                    }
                    Ok(http.post(url).header(CONTENT_LENGTH, 0))
                },
            )
            .await?;
        match resp.status() {
            StatusCode::CREATED if mount.is_some() => {
                self.emit(&Event::Mounted {
                    digest: digest.clone(),
                    from: mount.unwrap_or_default(),
                });
                return Ok(Pushed::Mounted);
            }
            StatusCode::ACCEPTED => {}
            _ => return Err(Client::status_error(what, resp).await),
        }
        let mut location = location_of(what, &resp)?;
        // OCI distribution 1.1: the registry's smallest acceptable chunk.
        let min_chunk = resp
            .headers()
            .get("oci-chunk-min-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        self.emit(&Event::Started {
            digest: digest.clone(),
            size: desc.size,
            offset: 0,
        });
        let size = desc.size;
        let chunk = self
            .inner
            .chunk_size
            .map(|c| c.max(min_chunk))
            .filter(|&c| c < size);
        let final_resp = if let Some(chunk) = chunk {
            let mut offset = 0u64;
            // Every PATCH that does not end where it was sent counts: a
            // registry acknowledging one byte at a time cannot make this
            // loop run `size` times.
            let mut stalls = 0;
            while offset < size {
                let end = (offset + chunk).min(size);
                let url = location.clone();
                let len = end - offset;
                let range = format!("{offset}-{}", end - 1);
                let resp = self
                    .send(what, repo.domain(), Need::Push, scope, false, &|http, _| {
                        let reader = source.open(offset).map_err(|e| Error::Io {
                            what: what.to_owned(),
                            source: e,
                        })?;
                        let counting = self.counting(reader, offset, size, &digest);
                        Ok(http
                            .patch(url.clone())
                            .header(CONTENT_TYPE, "application/octet-stream")
                            .header(CONTENT_RANGE, range.clone())
                            .header(CONTENT_LENGTH, len)
                            .body(stream_body(Box::new(counting), len)))
                    })
                    .await?;
                // 202 is the spec; some registries answer 201 or 204.
                if !matches!(
                    resp.status(),
                    StatusCode::ACCEPTED | StatusCode::CREATED | StatusCode::NO_CONTENT
                ) {
                    return Err(Client::status_error(what, resp).await);
                }
                if resp.headers().contains_key(LOCATION) {
                    location = location_of(what, &resp)?;
                }
                let next = match resp.headers().get("range").and_then(|v| v.to_str().ok()) {
                    Some(r) => {
                        let r = r.trim_start_matches("bytes=");
                        let last: u64 = r
                            .split('-')
                            .nth(1)
                            .and_then(|x| x.parse().ok())
                            .ok_or_else(|| Error::Protocol {
                                what: what.to_owned(),
                                message: format!("chunk upload answered an unreadable Range {r:?}"),
                            })?;
                        last + 1
                    }
                    None => end,
                };
                if next > end {
                    return Err(Error::Protocol {
                        what: what.to_owned(),
                        message: format!(
                            "the registry says it holds {next} bytes after a chunk ending at {end}"
                        ),
                    });
                }
                if next != end {
                    stalls += 1;
                    if stalls > 3 {
                        return Err(Error::Protocol {
                            what: what.to_owned(),
                            message: format!(
                                "the registry keeps acknowledging less than it was sent (at byte {next})"
                            ),
                        });
                    }
                }
                offset = next;
            }
            let url = with_digest(location, &digest);
            self.send(
                what,
                repo.domain(),
                Need::Push,
                scope,
                false,
                &move |http, _| Ok(http.put(url.clone()).header(CONTENT_LENGTH, 0)),
            )
            .await?
        } else {
            let url = with_digest(location, &digest);
            self.send(what, repo.domain(), Need::Push, scope, false, &|http, _| {
                let reader = source.open(0).map_err(|e| Error::Io {
                    what: what.to_owned(),
                    source: e,
                })?;
                let counting = self.counting(reader, 0, size, &digest);
                Ok(http
                    .put(url.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, size)
                    .body(stream_body(Box::new(counting), size)))
            })
            .await?
        };
        if !matches!(
            final_resp.status(),
            StatusCode::CREATED | StatusCode::NO_CONTENT | StatusCode::OK
        ) {
            return Err(Client::status_error(what, final_resp).await);
        }
        check_digest_header(what, &final_resp, &digest)?;
        self.emit(&Event::Done { digest });
        Ok(Pushed::Uploaded)
    }

    fn counting(
        &self,
        inner: Box<dyn AsyncRead + Send + Unpin>,
        offset: u64,
        total: u64,
        digest: &Digest,
    ) -> Counting {
        Counting {
            inner,
            done: offset,
            last: offset,
            total,
            digest: digest.clone(),
            progress: self.progress.clone(),
        }
    }

    /// Puts a manifest (or index) under `reference`'s tag, or its digest when
    /// it has no tag, with `media_type` as `Content-Type`. Returns the digest
    /// of the bytes, checked against the registry's `Docker-Content-Digest`.
    pub async fn push_manifest(
        &self,
        reference: &Reference,
        media_type: &MediaType,
        bytes: &[u8],
    ) -> Result<Digest> {
        let digest = match reference.digest() {
            Some(d) => Digest::of_bytes_with(d.algorithm(), bytes),
            None => Digest::of_bytes(bytes),
        };
        let what = format!("push of manifest {reference}");
        if let Some(d) = reference.digest()
            && *d != digest
        {
            return Err(Error::DigestMismatch {
                what,
                expected: d.clone(),
                actual: digest,
            });
        }
        let path = reference.path().to_owned();
        let target = reference
            .tag()
            .map_or_else(|| digest.to_string(), str::to_owned);
        let body: Arc<[u8]> = bytes.into();
        let mt = media_type.to_string();
        let resp = self
            .send(
                &what,
                reference.domain(),
                Need::Push,
                &Scope::push(&path),
                true,
                &move |http, base| {
                    let url = base
                        .join(&format!("{path}/manifests/{target}"))
                        .map_err(|e| bad_url(&e))?;
                    Ok(http
                        .put(url)
                        .header(CONTENT_TYPE, mt.clone())
                        .body(body.to_vec()))
                },
            )
            .await?;
        if !resp.status().is_success() {
            return Err(Client::status_error(&what, resp).await);
        }
        check_digest_header(&what, &resp, &digest)?;
        Ok(digest)
    }

    /// Pushes an image: every blob of the manifest (config and layers, at
    /// most the transfer limit at once) from `blobs`, then the manifest
    /// under `reference`. `mount_from` names a repository of the same
    /// registry to mount blobs from. Returns the manifest's digest.
    pub async fn push(
        &self,
        reference: &Reference,
        media_type: &MediaType,
        manifest: &[u8],
        blobs: &[(Descriptor, Arc<dyn BlobSource>)],
        mount_from: Option<&str>,
    ) -> Result<Digest> {
        let doc = pluginctl_oci::Manifest::parse(Some(media_type), manifest).map_err(|source| {
            Error::Oci {
                what: format!("manifest to push to {reference}"),
                source,
            }
        })?;
        let mut wanted: Vec<Descriptor> = Vec::new();
        for d in std::iter::once(&doc.config).chain(&doc.layers) {
            if !wanted.iter().any(|w| w.digest == d.digest) {
                wanted.push(d.clone());
            }
        }
        let repo = reference.without_tag_or_digest();
        let mut tasks = tokio::task::JoinSet::new();
        for desc in wanted {
            let source = blobs
                .iter()
                .find(|(d, _)| d.digest == desc.digest)
                .map(|(_, s)| Arc::clone(s))
                .ok_or_else(|| {
                    Error::Config(format!(
                        "push of {reference}: no content given for blob {}",
                        desc.digest
                    ))
                })?;
            let client = self.clone();
            let repo = repo.clone();
            let from = mount_from.map(str::to_owned);
            tasks.spawn(async move {
                client
                    .push_blob(&repo, &desc, &*source, from.as_deref())
                    .await
            });
        }
        while let Some(r) = tasks.join_next().await {
            let r = r.unwrap_or_else(|e| Err(Error::Config(format!("push task: {e}"))));
            if let Err(e) = r {
                tasks.abort_all();
                return Err(e);
            }
        }
        self.push_manifest(reference, media_type, manifest).await
    }
}

fn retryable(e: &Error) -> bool {
    match e {
        Error::Connect { .. } => true,
        Error::Registry {
            status, envelope, ..
        } => {
            crate::retry::retryable_status(*status)
                || envelope
                    .as_ref()
                    .is_some_and(|e| e.code == crate::error::ErrorCode::BlobUploadUnknown)
        }
        _ => false,
    }
}

/// An upload session's next URL: it may move to another host (storage
/// behind the registry), but not off http(s) nor from HTTPS to HTTP.
fn location_of(what: &str, resp: &reqwest::Response) -> Result<Url> {
    crate::transport::location(what, resp, "upload Location", true)
}

fn check_digest_header(what: &str, resp: &reqwest::Response, digest: &Digest) -> Result<()> {
    if let Some(h) = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        && h != digest.as_str()
    {
        let actual = Digest::parse(h).map_err(|source| Error::Oci {
            what: format!("Docker-Content-Digest of {what}"),
            source,
        })?;
        return Err(Error::DigestMismatch {
            what: what.to_owned(),
            expected: digest.clone(),
            actual,
        });
    }
    Ok(())
}
