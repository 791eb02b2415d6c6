//! Image manifests and indexes, OCI and Docker schema2.

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::{Descriptor, Error, MediaType, Platform, Result};

/// The largest manifest or index pluginctl reads by default (4 MiB, as
/// containerd and the distribution registry limit them).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// An image manifest: a config and an ordered list of layers.
///
/// Serialising writes the keys in the order Docker writes them for a plugin
/// (`schemaVersion, config, layers, mediaType` for schema2) or the order of the
/// OCI spec, so that a manifest we build is byte-for-byte what Docker pushes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// The document's own media type, when it carries one.
    pub media_type: Option<MediaType>,
    /// The OCI artifact type.
    pub artifact_type: Option<String>,
    /// The config blob (for a plugin: `application/vnd.docker.plugin.v1+json`).
    pub config: Descriptor,
    /// The layers, lowest first.
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (OCI referrers).
    pub subject: Option<Descriptor>,
    /// Arbitrary metadata.
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An index (OCI image index or Docker manifest list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// The document's own media type, when it carries one.
    pub media_type: Option<MediaType>,
    /// The OCI artifact type.
    pub artifact_type: Option<String>,
    /// The manifests, each usually with a platform.
    pub manifests: Vec<Descriptor>,
    /// The manifest this one refers to (OCI referrers).
    pub subject: Option<Descriptor>,
    /// Arbitrary metadata.
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A manifest or an index, as a registry or a content store hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // parsed once per pull; boxing buys nothing
pub enum Document {
    /// An image manifest.
    Manifest(Manifest),
    /// An index of manifests.
    Index(Index),
}

/// Every key either document type may carry; parsed once, then checked.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<i64>,
    media_type: Option<MediaType>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Manifest,
    Index,
}

impl Kind {
    fn of(mt: &MediaType) -> Option<Kind> {
        if mt.is_manifest() {
            Some(Kind::Manifest)
        } else if mt.is_index() {
            Some(Kind::Index)
        } else {
            None
        }
    }
}

impl Document {
    /// Parses a manifest or index.
    ///
    /// `expected` is the media type of the descriptor (or the `Content-Type`)
    /// that led to these bytes. When both it and the document's own
    /// `mediaType` are present they must agree. A document carrying both
    /// `layers` and `manifests` is rejected, as the OCI spec asks, since it
    /// could be read two ways.
    pub fn parse(expected: Option<&MediaType>, bytes: &[u8]) -> Result<Document> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(Error::TooLarge {
                what: "manifest",
                size: bytes.len() as u64,
                limit: MAX_MANIFEST_BYTES as u64,
            });
        }
        let raw: Raw = serde_json::from_slice(bytes).map_err(|source| Error::Json {
            what: "manifest",
            source,
        })?;
        if raw.layers.is_some() && raw.manifests.is_some() {
            return Err(Error::AmbiguousDocument);
        }
        if let (Some(exp), Some(own)) = (expected, &raw.media_type)
            && exp != own
        {
            return Err(Error::MediaTypeMismatch {
                expected: exp.clone(),
                found: own.clone(),
            });
        }
        let declared = raw.media_type.as_ref().or(expected);
        let kind = match declared {
            Some(mt) => Kind::of(mt).ok_or_else(|| Error::NotAManifest(mt.clone()))?,
            None if raw.manifests.is_some() => Kind::Index,
            None => Kind::Manifest,
        };
        match raw.schema_version {
            Some(2) => {}
            Some(v) => return Err(Error::SchemaVersion(v.to_string())),
            None => return Err(Error::SchemaVersion("missing".to_owned())),
        }
        match kind {
            Kind::Manifest => {
                if raw.manifests.is_some() {
                    return Err(Error::UnexpectedField {
                        what: "manifest",
                        field: "manifests",
                    });
                }
                let config = raw.config.ok_or(Error::MissingField {
                    what: "manifest",
                    field: "config",
                })?;
                Ok(Document::Manifest(Manifest {
                    schema_version: 2,
                    media_type: raw.media_type,
                    artifact_type: raw.artifact_type,
                    config,
                    layers: raw.layers.unwrap_or_default(),
                    subject: raw.subject,
                    annotations: raw.annotations,
                }))
            }
            Kind::Index => {
                if raw.config.is_some() {
                    return Err(Error::UnexpectedField {
                        what: "index",
                        field: "config",
                    });
                }
                let manifests = raw.manifests.ok_or(Error::MissingField {
                    what: "index",
                    field: "manifests",
                })?;
                Ok(Document::Index(Index {
                    schema_version: 2,
                    media_type: raw.media_type,
                    artifact_type: raw.artifact_type,
                    manifests,
                    subject: raw.subject,
                    annotations: raw.annotations,
                }))
            }
        }
    }

    /// The descriptors this document points at: config and layers of a
    /// manifest, the manifests of an index. Used to walk the content graph.
    pub fn children(&self) -> Vec<&Descriptor> {
        match self {
            Document::Manifest(m) => std::iter::once(&m.config).chain(&m.layers).collect(),
            Document::Index(i) => i.manifests.iter().collect(),
        }
    }
}

impl Manifest {
    /// Parses an image manifest; an index is an error.
    pub fn parse(expected: Option<&MediaType>, bytes: &[u8]) -> Result<Manifest> {
        match Document::parse(expected, bytes)? {
            Document::Manifest(m) => Ok(m),
            Document::Index(_) => Err(Error::WrongDocument {
                found: "an index",
                wanted: "a manifest",
            }),
        }
    }

    /// A Docker schema2 manifest, the form `docker plugin push` writes.
    pub fn docker(config: Descriptor, layers: Vec<Descriptor>) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: Some(MediaType::DockerManifest),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: None,
        }
    }

    /// The JSON bytes of this manifest, compact, in the key order described
    /// on the type.
    pub fn to_vec(&self) -> Vec<u8> {
        crate::json::to_vec(self)
    }
}

impl Index {
    /// An OCI image index of `manifests`.
    pub fn oci(manifests: Vec<Descriptor>) -> Index {
        Index {
            schema_version: 2,
            media_type: Some(MediaType::OciIndex),
            artifact_type: None,
            manifests,
            subject: None,
            annotations: None,
        }
    }

    /// Parses an index; an image manifest is an error.
    pub fn parse(expected: Option<&MediaType>, bytes: &[u8]) -> Result<Index> {
        match Document::parse(expected, bytes)? {
            Document::Index(i) => Ok(i),
            Document::Manifest(_) => Err(Error::WrongDocument {
                found: "a manifest",
                wanted: "an index",
            }),
        }
    }

    /// The manifest for `platform`: the best match by
    /// [`Platform::match_rank`], the first one on a tie. An error lists the
    /// platforms the index does have.
    pub fn select(&self, platform: &Platform) -> Result<&Descriptor> {
        let mut best: Option<(u32, &Descriptor)> = None;
        for d in &self.manifests {
            let Some(p) = &d.platform else { continue };
            if let Some(rank) = platform.match_rank(p)
                && best.is_none_or(|(r, _)| rank > r)
            {
                best = Some((rank, d));
            }
        }
        best.map(|(_, d)| d).ok_or_else(|| {
            let available: Vec<String> = self
                .manifests
                .iter()
                .map(|d| {
                    d.platform
                        .as_ref()
                        .map_or_else(|| "unknown".to_owned(), ToString::to_string)
                })
                .collect();
            Error::NoMatchingPlatform {
                wanted: platform.to_string(),
                available: if available.is_empty() {
                    "none".to_owned()
                } else {
                    available.join(", ")
                },
            }
        })
    }

    /// The JSON bytes of this index, compact, in the OCI key order.
    pub fn to_vec(&self) -> Vec<u8> {
        crate::json::to_vec(self)
    }
}

impl Serialize for Manifest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("schemaVersion", &self.schema_version)?;
        // Docker's plugin push writes mediaType last; OCI writes it second.
        let docker_order = self.media_type == Some(MediaType::DockerManifest);
        if let Some(mt) = &self.media_type
            && !docker_order
        {
            map.serialize_entry("mediaType", mt)?;
        }
        if let Some(at) = &self.artifact_type {
            map.serialize_entry("artifactType", at)?;
        }
        map.serialize_entry("config", &self.config)?;
        map.serialize_entry("layers", &self.layers)?;
        if let Some(subject) = &self.subject {
            map.serialize_entry("subject", subject)?;
        }
        if let Some(a) = &self.annotations {
            map.serialize_entry("annotations", a)?;
        }
        if docker_order {
            map.serialize_entry("mediaType", &MediaType::DockerManifest)?;
        }
        map.end()
    }
}

impl Serialize for Index {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("schemaVersion", &self.schema_version)?;
        if let Some(mt) = &self.media_type {
            map.serialize_entry("mediaType", mt)?;
        }
        if let Some(at) = &self.artifact_type {
            map.serialize_entry("artifactType", at)?;
        }
        map.serialize_entry("manifests", &self.manifests)?;
        if let Some(subject) = &self.subject {
            map.serialize_entry("subject", subject)?;
        }
        if let Some(a) = &self.annotations {
            map.serialize_entry("annotations", a)?;
        }
        map.end()
    }
}

impl Serialize for Document {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Document::Manifest(m) => m.serialize(s),
            Document::Index(i) => i.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn check(expected: Option<&str>, json: &str, want: &str) {
        let mt = expected.map(MediaType::parse);
        let got = match Document::parse(mt.as_ref(), json.as_bytes()) {
            Ok(Document::Manifest(m)) => format!("manifest {} layers", m.layers.len()),
            Ok(Document::Index(i)) => format!("index {} manifests", i.manifests.len()),
            Err(e) => format!("err {e}"),
        };
        assert_eq!(got, want, "{json}");
    }

    fn manifest_json(mt: Option<&str>) -> String {
        let mt = mt.map_or(String::new(), |m| format!(r#""mediaType":"{m}","#));
        format!(
            r#"{{"schemaVersion":2,{mt}"config":{{"mediaType":"application/vnd.docker.plugin.v1+json","digest":"{D1}","size":3}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{D2}","size":5}}]}}"#
        )
    }

    const OCI_M: &str = "application/vnd.oci.image.manifest.v1+json";
    const DOCKER_M: &str = "application/vnd.docker.distribution.manifest.v2+json";
    const OCI_I: &str = "application/vnd.oci.image.index.v1+json";

    #[test]
    fn media_type_agreement() {
        check(
            Some(OCI_M),
            &manifest_json(Some(OCI_M)),
            "manifest 1 layers",
        );
        check(None, &manifest_json(Some(DOCKER_M)), "manifest 1 layers");
        check(Some(OCI_M), &manifest_json(None), "manifest 1 layers");
        check(None, &manifest_json(None), "manifest 1 layers");
        check(
            Some(DOCKER_M),
            &manifest_json(Some(OCI_M)),
            "err document has media type application/vnd.oci.image.manifest.v1+json but its descriptor says application/vnd.docker.distribution.manifest.v2+json",
        );
        check(
            Some(OCI_I),
            &manifest_json(None),
            "err index has an unexpected \"config\"",
        );
        check(
            Some("application/vnd.docker.plugin.v1+json"),
            &manifest_json(None),
            "err application/vnd.docker.plugin.v1+json is not a manifest or index media type",
        );
    }

    #[test]
    fn structural_errors() {
        check(
            None,
            &format!(
                r#"{{"schemaVersion":2,"config":{{"mediaType":"a","digest":"{D1}","size":1}},"layers":[],"manifests":[]}}"#
            ),
            "err document carries both \"layers\" and \"manifests\"",
        );
        check(
            None,
            r#"{"schemaVersion":1,"manifests":[]}"#,
            "err unsupported schemaVersion 1, expected 2",
        );
        check(
            None,
            r#"{"manifests":[]}"#,
            "err unsupported schemaVersion missing, expected 2",
        );
        check(
            None,
            r#"{"schemaVersion":2,"layers":[]}"#,
            "err manifest has no \"config\"",
        );
        check(
            None,
            r#"{"schemaVersion":2,"manifests":[]}"#,
            "index 0 manifests",
        );
        check(None, "[]", "err invalid manifest");
        check(
            Some(OCI_I),
            &format!(
                r#"{{"schemaVersion":2,"config":{{"mediaType":"a","digest":"{D1}","size":1}},"manifests":[]}}"#
            ),
            "err index has an unexpected \"config\"",
        );
        let huge = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert_eq!(
            Document::parse(None, &huge).unwrap_err().to_string(),
            "manifest is 4194305 bytes, over the limit of 4194304"
        );
        // Duplicate keys are an error, not a silent "last one wins".
        check(
            None,
            &format!(
                r#"{{"schemaVersion":2,"config":{{"mediaType":"a","digest":"{D1}","size":1}},"layers":[],"layers":[]}}"#
            ),
            "err invalid manifest",
        );
    }

    fn index_with(platforms: &[&str]) -> Index {
        let manifests = platforms
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut d =
                    Descriptor::of_bytes(MediaType::OciManifest, &[u8::try_from(i).unwrap()]);
                d.platform = Some(p.parse().unwrap());
                d
            })
            .collect();
        Index::oci(manifests)
    }

    #[test]
    fn platform_selection() {
        let idx = index_with(&[
            "linux/arm/v6",
            "linux/amd64",
            "linux/arm/v7",
            "linux/arm64/v8",
        ]);
        let pick = |p: &str| {
            idx.select(&p.parse().unwrap())
                .map(|d| d.platform.clone().unwrap().to_string())
        };
        assert_eq!(pick("linux/amd64").unwrap(), "linux/amd64");
        assert_eq!(pick("linux/arm/v7").unwrap(), "linux/arm/v7");
        assert_eq!(pick("linux/arm/v8").unwrap(), "linux/arm/v7");
        assert_eq!(pick("linux/aarch64").unwrap(), "linux/arm64/v8");
        assert_eq!(
            pick("linux/s390x").unwrap_err().to_string(),
            "no manifest for linux/s390x in the index (available: linux/arm/v6, linux/amd64, linux/arm/v7, linux/arm64/v8)"
        );
        assert_eq!(
            index_with(&[])
                .select(&Platform::host())
                .unwrap_err()
                .to_string(),
            format!(
                "no manifest for {} in the index (available: none)",
                Platform::host()
            )
        );
    }

    #[test]
    fn children_of_documents() {
        let m = Manifest::parse(None, manifest_json(None).as_bytes()).unwrap();
        let doc = Document::Manifest(m);
        let kids: Vec<&str> = doc.children().iter().map(|d| d.digest.as_str()).collect();
        assert_eq!(kids, [D1, D2]);
    }
}
