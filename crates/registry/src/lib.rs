//! The OCI distribution client of pluginctl.
//!
//! [`Client`] speaks the distribution API to real registries (CNCF
//! distribution, Docker Hub, GHCR, Harbor, ECR, Quay):
//!
//! - **resolve** a reference to a manifest ([`Client::resolve`]), following
//!   an index to the manifest for a platform, every document verified
//!   against its digest and a size limit;
//! - **pull** blobs into a caller's sink ([`Client::fetch_blob`],
//!   [`Client::pull`]) with size and digest checked on the fly, resumed with
//!   `Range` after a cut, redirects followed without the registry's
//!   credentials leaving its host;
//! - **push** blobs ([`Client::push_blob`], [`Client::push`]): skipped when
//!   present, mounted across repositories, uploaded whole or in chunks;
//!   manifests with [`Client::push_manifest`];
//! - **authenticate** with Basic or Bearer tokens from the registry's
//!   challenge, with credentials from the caller ([`StaticCredentials`]) or
//!   `~/.docker/config.json` and its helpers ([`DockerConfig`]);
//! - **retry** connection errors, cut transfers, 429 and 500/502/503/504
//!   with backoff and jitter or `Retry-After` ([`RetryPolicy`], one policy
//!   for every request), and report per-blob [`Event`]s;
//! - reach a registry through the **hosts** the machine's configuration
//!   names ([`HostsConfig`]): containerd's `hosts.toml` mirrors with their
//!   capabilities, CAs, client certificates and headers, Docker's
//!   `certs.d` files, `daemon.json`'s `registry-mirrors`; the next host is
//!   tried when one fails, a dead one is skipped, pushes go only where
//!   allowed, and credentials only to the host they are for;
//! - **log in** ([`Client::login`], the check `docker login` makes) and
//!   store or erase credentials where Docker keeps them
//!   ([`DockerConfig::store`], [`DockerConfig::erase`]).
//!
//! It uses tokio for I/O but never builds a runtime, and it does not know
//! any content store: blobs go to an `AsyncWrite` the caller gives.
//!
//! ```no_run
//! # async fn demo() -> Result<(), pluginctl_registry::Error> {
//! use pluginctl_oci::Reference;
//! use pluginctl_registry::Client;
//!
//! let client = Client::from_docker_config()?;
//! let reference = Reference::parse("vieux/sshfs:latest").expect("valid reference");
//! let image = client.resolve(&reference, None).await?;
//! let config = &image.manifest.config;
//! let bytes = client.fetch_blob_bytes(&reference, config, 1 << 20).await?;
//! println!("{} config: {} bytes", image.descriptor.digest, bytes.len());
//! # Ok(()) }
//! ```
//!
//! With mirrors from `/etc/docker/certs.d/<registry>/hosts.toml`:
//!
//! ```no_run
//! # fn demo() -> Result<(), pluginctl_registry::Error> {
//! use pluginctl_registry::{Client, DockerConfig, HostsConfig};
//!
//! let hosts = HostsConfig::with_roots(HostsConfig::default_roots(true));
//! let client = Client::builder()
//!     .credentials(DockerConfig::load_default()?)
//!     .hosts(hosts)
//!     .build()?;
//! # let _ = client; Ok(()) }
//! ```
//!
//! `examples/copy.rs` pulls an image into an OCI layout directory and
//! pushes one from it.

mod auth;
mod client;
mod credentials;
mod endpoint;
mod error;
pub mod hosts;
mod login;
mod progress;
mod pull;
mod push;
mod retry;
mod transport;

pub use auth::Challenge;
pub use client::{Client, ClientBuilder, RetryPolicy};
pub use credentials::{
    CredentialSource, Credentials, DockerConfig, StaticCredentials, Stored, normalize_host,
    server_key,
};
pub use error::{Envelope, Error, ErrorCode, Result};
pub use hosts::{HostsConfig, RegistryHost};
pub use progress::Event;
pub use pull::{BlobSinks, MANIFEST_ACCEPT, Resolved};
pub use push::{BlobSource, BytesSource, FileSource, Pushed};
