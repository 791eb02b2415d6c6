//! Media types of the OCI image spec and of Docker's schema2, as an open enum.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! media_types {
    ($( $(#[$doc:meta])* $variant:ident => $s:literal, )*) => {
        /// A media type. The known ones are variants; anything else is kept
        /// verbatim in [`MediaType::Other`], so nothing read is lost.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum MediaType {
            $( $(#[$doc])* $variant, )*
            /// Any other media type, kept as written.
            Other(String),
        }

        impl MediaType {
            /// The media type string.
            pub fn as_str(&self) -> &str {
                match self {
                    $( MediaType::$variant => $s, )*
                    MediaType::Other(s) => s,
                }
            }

            /// Maps a media type string to a variant; never fails.
            pub fn parse(s: &str) -> MediaType {
                match s {
                    $( $s => MediaType::$variant, )*
                    other => MediaType::Other(other.to_owned()),
                }
            }

            /// Every known (non-`Other`) media type.
            pub const KNOWN: &'static [MediaType] = &[ $( MediaType::$variant, )* ];
        }
    };
}

media_types! {
    /// `application/vnd.oci.image.manifest.v1+json`
    OciManifest => "application/vnd.oci.image.manifest.v1+json",
    /// `application/vnd.oci.image.index.v1+json`
    OciIndex => "application/vnd.oci.image.index.v1+json",
    /// `application/vnd.oci.image.config.v1+json`
    OciConfig => "application/vnd.oci.image.config.v1+json",
    /// `application/vnd.oci.empty.v1+json`
    OciEmpty => "application/vnd.oci.empty.v1+json",
    /// `application/vnd.oci.image.layer.v1.tar`
    OciLayer => "application/vnd.oci.image.layer.v1.tar",
    /// `application/vnd.oci.image.layer.v1.tar+gzip`
    OciLayerGzip => "application/vnd.oci.image.layer.v1.tar+gzip",
    /// `application/vnd.oci.image.layer.v1.tar+zstd`
    OciLayerZstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    /// `application/vnd.docker.distribution.manifest.v2+json` (schema2)
    DockerManifest => "application/vnd.docker.distribution.manifest.v2+json",
    /// `application/vnd.docker.distribution.manifest.list.v2+json`
    DockerManifestList => "application/vnd.docker.distribution.manifest.list.v2+json",
    /// `application/vnd.docker.container.image.v1+json`
    DockerImageConfig => "application/vnd.docker.container.image.v1+json",
    /// `application/vnd.docker.image.rootfs.diff.tar`
    DockerLayer => "application/vnd.docker.image.rootfs.diff.tar",
    /// `application/vnd.docker.image.rootfs.diff.tar.gzip`
    DockerLayerGzip => "application/vnd.docker.image.rootfs.diff.tar.gzip",
    /// `application/vnd.docker.image.rootfs.foreign.diff.tar.gzip`
    DockerForeignLayerGzip => "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    /// `application/vnd.docker.plugin.v1+json`, the config of a managed plugin
    Plugin => "application/vnd.docker.plugin.v1+json",
}

/// How a layer's bytes are compressed, as its media type says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl MediaType {
    /// An image manifest (OCI or Docker schema2).
    pub fn is_manifest(&self) -> bool {
        matches!(self, MediaType::OciManifest | MediaType::DockerManifest)
    }

    /// An index (OCI index or Docker manifest list).
    pub fn is_index(&self) -> bool {
        matches!(self, MediaType::OciIndex | MediaType::DockerManifestList)
    }

    /// The compression of a layer type, or `None` if this is not a layer type
    /// pluginctl knows.
    pub fn layer_compression(&self) -> Option<Compression> {
        match self {
            MediaType::OciLayer | MediaType::DockerLayer => Some(Compression::None),
            MediaType::OciLayerGzip
            | MediaType::DockerLayerGzip
            | MediaType::DockerForeignLayerGzip => Some(Compression::Gzip),
            MediaType::OciLayerZstd => Some(Compression::Zstd),
            _ => None,
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MediaType {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<MediaType, Self::Err> {
        Ok(MediaType::parse(s))
    }
}

impl From<&str> for MediaType {
    fn from(s: &str) -> MediaType {
        MediaType::parse(s)
    }
}

impl Serialize for MediaType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MediaType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MediaType, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(MediaType::parse(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_type_round_trips_and_other_is_kept() {
        for mt in MediaType::KNOWN {
            assert_eq!(&MediaType::parse(mt.as_str()), mt);
        }
        let other = MediaType::parse("application/x-thing");
        assert_eq!(other, MediaType::Other("application/x-thing".into()));
        assert_eq!(other.as_str(), "application/x-thing");
    }

    #[test]
    fn classification() {
        assert!(MediaType::DockerManifest.is_manifest());
        assert!(!MediaType::DockerManifest.is_index());
        assert!(MediaType::DockerManifestList.is_index());
        assert_eq!(
            MediaType::OciLayerZstd.layer_compression(),
            Some(Compression::Zstd)
        );
        assert_eq!(
            MediaType::DockerLayer.layer_compression(),
            Some(Compression::None)
        );
        assert_eq!(MediaType::Plugin.layer_compression(), None);
        assert_eq!(
            MediaType::Plugin.as_str(),
            "application/vnd.docker.plugin.v1+json"
        );
    }
}
