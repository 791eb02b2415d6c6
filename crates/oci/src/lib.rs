//! Wire types of Docker managed plugins and of the OCI image and distribution
//! specs: digests, media types, descriptors, manifests, indexes, platforms,
//! references, and the plugin config. No I/O happens here.
//!
//! Everything parses strictly (with errors that name the offending value) and
//! serialises the way Docker writes it, so that a manifest or config built
//! here has the bytes, and so the digest, that Docker would produce.
//!
//! ```
//! use pluginctl_oci::{Descriptor, Digest, Manifest, MediaType, PluginConfig, Reference};
//!
//! // Normalise a reference as `docker plugin install` does.
//! let r = Reference::parse("vieux/sshfs").unwrap();
//! assert_eq!(r.to_string(), "docker.io/vieux/sshfs:latest");
//! assert_eq!(r.familiar(), "vieux/sshfs:latest");
//!
//! // Read a plugin author's config.json; keys are case-insensitive.
//! let config = PluginConfig::from_slice(br#"{"description":"demo",
//!     "interface":{"types":["docker.volumedriver/1.0"],"socket":"demo.sock"},
//!     "entrypoint":["/demo"]}"#).unwrap();
//! assert_eq!(config.types()[0].capability, "volumedriver");
//!
//! // Describe it and build the schema2 manifest Docker would push.
//! let config_bytes = config.to_vec();
//! let layer = Descriptor::new(MediaType::DockerLayerGzip, Digest::of_bytes(b"layer"), 5);
//! let manifest = Manifest::docker(Descriptor::of_bytes(MediaType::Plugin, &config_bytes), vec![layer]);
//! let parsed = Manifest::parse(Some(&MediaType::DockerManifest), &manifest.to_vec()).unwrap();
//! assert_eq!(parsed, manifest);
//! ```

mod descriptor;
mod digest;
pub mod json;
mod manifest;
mod media_type;
pub mod plugin;
pub mod reference;

pub use descriptor::{Descriptor, Platform};
pub use digest::{Algorithm, Digest, Digester};
pub use manifest::{Document, Index, MAX_MANIFEST_BYTES, Manifest};
pub use media_type::{Compression, MediaType};
pub use plugin::{InterfaceType, Plugin, PluginConfig, PluginPrivilege, PluginSettings};
pub use reference::Reference;

/// What can go wrong while parsing wire types.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A digest string is malformed or uses an unsupported algorithm.
    #[error("invalid digest {input:?}: {reason}")]
    InvalidDigest {
        /// The text that was parsed.
        input: String,
        /// Which rule it broke.
        reason: String,
    },
    /// A reference breaks Docker's grammar.
    #[error("invalid reference {input:?}: {reason}")]
    InvalidReference {
        /// The text that was parsed.
        input: String,
        /// Which rule it broke.
        reason: String,
    },
    /// A `--platform` value is malformed.
    #[error("invalid platform {input:?}: {reason}")]
    InvalidPlatform {
        /// The text that was parsed.
        input: String,
        /// Which rule it broke.
        reason: String,
    },
    /// An interface type is not `PREFIX.CAPABILITY[/VERSION]`.
    #[error("invalid plugin interface type {0:?}: expected PREFIX.CAPABILITY/VERSION")]
    InvalidInterfaceType(String),
    /// A plugin's `Interface.Socket` is not one file name: it could name a
    /// socket outside the plugin's socket directory.
    #[error("invalid Interface.Socket {socket:?}: {reason}")]
    InvalidSocket {
        /// The socket name as the config gives it.
        socket: String,
        /// Which rule it broke.
        reason: String,
    },
    /// A JSON document does not parse as the type it should be.
    #[error("invalid {what}")]
    Json {
        /// What was being parsed.
        what: &'static str,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A document is larger than its limit.
    #[error("{what} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// What was being parsed.
        what: &'static str,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A document carries both `layers` and `manifests`.
    #[error("document carries both \"layers\" and \"manifests\"")]
    AmbiguousDocument,
    /// A document's own media type disagrees with its descriptor's.
    #[error("document has media type {found} but its descriptor says {expected}")]
    MediaTypeMismatch {
        /// The descriptor's (or `Content-Type`'s) media type.
        expected: MediaType,
        /// The document's own.
        found: MediaType,
    },
    /// The media type is not one of a manifest or an index.
    #[error("{0} is not a manifest or index media type")]
    NotAManifest(MediaType),
    /// A manifest was found where an index was wanted, or the reverse.
    #[error("document is {found}, not {wanted}")]
    WrongDocument {
        /// What the document is.
        found: &'static str,
        /// What the caller asked for.
        wanted: &'static str,
    },
    /// `schemaVersion` is missing or not 2.
    #[error("unsupported schemaVersion {0}, expected 2")]
    SchemaVersion(String),
    /// A required field is missing.
    #[error("{what} has no \"{field}\"")]
    MissingField {
        /// The document kind.
        what: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// A field that does not belong to this document kind.
    #[error("{what} has an unexpected \"{field}\"")]
    UnexpectedField {
        /// The document kind.
        what: &'static str,
        /// The field.
        field: &'static str,
    },
    /// No manifest in an index runs on the wanted platform.
    #[error("no manifest for {wanted} in the index (available: {available})")]
    NoMatchingPlatform {
        /// The platform asked for.
        wanted: String,
        /// The platforms the index has.
        available: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
