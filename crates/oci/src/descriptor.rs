//! Content descriptors and platforms.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::{Digest, Error, MediaType, Result};

/// A pointer to content: its media type, digest and size.
///
/// Parsing rejects a negative size or one beyond `i64::MAX` (the OCI spec's
/// int64), so a size read from the wire is always usable as a limit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the referenced content.
    pub media_type: MediaType,
    /// The digest of the referenced content.
    pub digest: Digest,
    /// The size of the referenced content in bytes.
    #[serde(deserialize_with = "size")]
    pub size: u64,
    /// Alternative locations (foreign layers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Arbitrary metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// The platform of a manifest in an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The artifact type of the referenced manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// The largest size a descriptor may carry (`i64::MAX`).
    pub const MAX_SIZE: u64 = i64::MAX as u64;

    /// A descriptor with only the three required fields.
    pub fn new(media_type: MediaType, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type,
            digest,
            size,
            urls: None,
            annotations: None,
            platform: None,
            artifact_type: None,
        }
    }

    /// The descriptor of `bytes` with the given media type.
    pub fn of_bytes(media_type: MediaType, bytes: &[u8]) -> Descriptor {
        Descriptor::new(media_type, Digest::of_bytes(bytes), bytes.len() as u64)
    }
}

fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    use serde::de::Error as _;
    let n = serde_json::Number::deserialize(d)?;
    if let Some(u) = n.as_u64() {
        if u > Descriptor::MAX_SIZE {
            return Err(D::Error::custom(format!(
                "descriptor size {u} is larger than {}",
                Descriptor::MAX_SIZE
            )));
        }
        Ok(u)
    } else if n.as_i64().is_some() {
        Err(D::Error::custom(format!("descriptor size {n} is negative")))
    } else {
        Err(D::Error::custom(format!(
            "descriptor size {n} is not a whole number"
        )))
    }
}

/// The platform a manifest is built for, as found in an index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture in Go's names: `amd64`, `arm64`, `arm`, `386`, …
    pub architecture: String,
    /// Operating system in Go's names: `linux`, `windows`, …
    pub os: String,
    /// Operating system version (Windows).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// Required operating system features.
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    /// CPU variant: `v7` for arm, `v8` for arm64, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Required CPU features (Docker manifest lists only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
}

impl Platform {
    /// A platform from OS, architecture and optional variant.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            architecture: architecture.to_owned(),
            os: os.to_owned(),
            variant: variant.map(str::to_owned),
            ..Platform::default()
        }
    }

    /// The platform this program runs on, in Go's names.
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", None),
            // Rust's `arm` targets are v6 or v7; v7 is what Debian's armhf runs.
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "loongarch64" => ("loong64", None),
            "mips64" if cfg!(target_endian = "little") => ("mips64le", None),
            other => (other, None),
        };
        Platform::new(std::env::consts::OS, arch, variant)
    }

    /// The same platform with Go's canonical names and the default variant
    /// made explicit where there is one (`aarch64` → `arm64/v8`,
    /// `armhf` → `arm/v7`, `x86_64` → `amd64`).
    #[must_use]
    pub fn normalized(&self) -> Platform {
        let os = self.os.to_ascii_lowercase();
        let arch = self.architecture.to_ascii_lowercase();
        let variant = self.variant.as_deref().map(str::to_ascii_lowercase);
        let (arch, variant) = match (arch.as_str(), variant.as_deref()) {
            ("x86_64" | "x86-64" | "amd64", v) => ("amd64".to_owned(), v.map(str::to_owned)),
            ("i386" | "386", _) => ("386".to_owned(), None),
            ("aarch64" | "arm64", None | Some("8" | "v8")) => {
                ("arm64".to_owned(), Some("v8".to_owned()))
            }
            ("aarch64" | "arm64", Some(v)) => ("arm64".to_owned(), Some(v.to_owned())),
            ("armhf", _) | ("arm", None) => ("arm".to_owned(), Some("v7".to_owned())),
            ("armel", _) => ("arm".to_owned(), Some("v6".to_owned())),
            ("arm", Some(v)) => {
                let v = if v.starts_with('v') {
                    v.to_owned()
                } else {
                    format!("v{v}")
                };
                ("arm".to_owned(), Some(v))
            }
            (a, v) => (a.to_owned(), v.map(str::to_owned)),
        };
        Platform {
            architecture: arch,
            os,
            variant,
            ..self.clone()
        }
    }

    /// How well `candidate` serves a host of this platform: `None` when it
    /// cannot run here, higher is better. An exact variant beats an older
    /// compatible one (arm v7 runs v6 and v5; arm64 runs nothing older).
    pub fn match_rank(&self, candidate: &Platform) -> Option<u32> {
        let want = self.normalized();
        let have = candidate.normalized();
        if want.os != have.os || want.architecture != have.architecture {
            return None;
        }
        match (&want.variant, &have.variant) {
            (None, None) => Some(100),
            // No variant wanted and none is the default (amd64, …): the
            // baseline variants run on every CPU of the architecture; v3 and
            // up need instructions this host may lack.
            (None, Some(v)) if matches!(v.as_str(), "v1" | "v2") => Some(50),
            (Some(w), Some(h)) if w == h => Some(100),
            (Some(_), None) => Some(60),
            (Some(w), Some(h)) if want.architecture == "arm" => {
                let level = |v: &str| v.trim_start_matches('v').parse::<u32>().ok();
                match (level(w), level(h)) {
                    (Some(w), Some(h)) if h < w => 90u32.checked_sub(w - h),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = Error;
    /// Parses `os/arch[/variant]`, as `--platform` takes it.
    fn from_str(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = |reason: &str| Error::InvalidPlatform {
            input: s.to_owned(),
            reason: reason.to_owned(),
        };
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad("empty component"));
        }
        match parts.as_slice() {
            [os, arch] => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] => Ok(Platform::new(os, arch, Some(variant))),
            _ => Err(bad("expected OS/ARCH or OS/ARCH/VARIANT")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_desc(json: &str) -> String {
        match serde_json::from_str::<Descriptor>(json) {
            Ok(d) => format!("ok {}", d.size),
            Err(e) => format!("err {e}"),
        }
    }

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn descriptor_sizes() {
        let with = |size: &str| {
            format!(r#"{{"mediaType":"application/octet-stream","digest":"{D}","size":{size}}}"#)
        };
        assert_eq!(parse_desc(&with("0")), "ok 0");
        assert_eq!(
            parse_desc(&with("9223372036854775807")),
            "ok 9223372036854775807"
        );
        assert!(parse_desc(&with("-1")).starts_with("err descriptor size -1 is negative"));
        assert!(
            parse_desc(&with("9223372036854775808"))
                .starts_with("err descriptor size 9223372036854775808 is larger than")
        );
        assert!(
            parse_desc(&with("1.5")).starts_with("err descriptor size 1.5 is not a whole number")
        );
        assert!(parse_desc(&with("\"12\"")).starts_with("err invalid type: string"));
        assert!(parse_desc(r#"{"mediaType":"x","size":1}"#).contains("missing field `digest`"));
    }

    fn rank(host: &str, candidate: &str) -> Option<u32> {
        host.parse::<Platform>()
            .unwrap()
            .match_rank(&candidate.parse::<Platform>().unwrap())
    }

    #[test]
    fn platform_matching() {
        assert_eq!(rank("linux/amd64", "linux/amd64"), Some(100));
        assert_eq!(rank("linux/x86_64", "linux/amd64"), Some(100));
        assert_eq!(rank("linux/amd64", "linux/arm64"), None);
        assert_eq!(rank("linux/amd64", "windows/amd64"), None);
        assert_eq!(rank("linux/arm64", "linux/arm64/v8"), Some(100));
        assert_eq!(rank("linux/aarch64", "linux/arm64"), Some(100));
        assert_eq!(rank("linux/arm/v7", "linux/arm/v7"), Some(100));
        assert_eq!(rank("linux/arm/v7", "linux/arm/v6"), Some(89));
        assert_eq!(rank("linux/arm/v6", "linux/arm/v7"), None);
        assert_eq!(rank("linux/amd64", "linux/amd64/v2"), Some(50));
        assert_eq!(rank("linux/amd64", "linux/amd64/v3"), None);
        assert_eq!(rank("linux/arm/v99", "linux/arm/v7"), None);
    }

    #[test]
    fn platform_parse_errors() {
        assert_eq!(
            "linux".parse::<Platform>().unwrap_err().to_string(),
            "invalid platform \"linux\": expected OS/ARCH or OS/ARCH/VARIANT"
        );
        assert_eq!(
            "linux//v7".parse::<Platform>().unwrap_err().to_string(),
            "invalid platform \"linux//v7\": empty component"
        );
        assert_eq!(
            Platform::new("linux", "arm", Some("v7")).to_string(),
            "linux/arm/v7"
        );
    }
}
