//! `daemon.json`'s registry settings: `registry-mirrors` (for docker.io)
//! and `insecure-registries`. Every other key is dockerd's business.

use std::path::Path;

use reqwest::Url;
use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Deserialize, Default)]
struct Raw {
    #[serde(rename = "registry-mirrors", default)]
    mirrors: Vec<String>,
    #[serde(rename = "insecure-registries", default)]
    insecure: Vec<String>,
}

/// What pluginctl takes from a `daemon.json`.
pub(crate) struct DaemonJson {
    pub(crate) mirrors: Vec<Url>,
    pub(crate) insecure: Vec<String>,
}

impl DaemonJson {
    pub(crate) fn load(path: &Path) -> Result<DaemonJson> {
        let fail = |m: String| Error::Config(format!("{}: {m}", path.display()));
        let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let raw: Raw = serde_json::from_slice(&bytes).map_err(|e| fail(e.to_string()))?;
        let mut mirrors = Vec::new();
        for m in raw.mirrors {
            // dockerd refuses a mirror without a scheme, and so do we.
            let u = Url::parse(&m)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .ok_or_else(|| fail(format!("registry-mirrors: {m:?} is not an http(s) URL")))?;
            if !u.username().is_empty() || u.password().is_some() {
                return Err(fail(format!(
                    "registry-mirrors: {m:?} holds a user name or password (dockerd refuses it too)"
                )));
            }
            if u.query().is_some() || u.fragment().is_some() {
                return Err(fail(format!(
                    "registry-mirrors: {m:?} has a query or fragment"
                )));
            }
            mirrors.push(u);
        }
        Ok(DaemonJson {
            mirrors,
            insecure: raw.insecure,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_and_insecure_registries() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("daemon.json");
        std::fs::write(
            &p,
            r#"{"debug": true, "registry-mirrors": ["https://m.example/hub/", "http://10.0.0.5:5000"],
                "insecure-registries": ["10.0.0.0/8", "reg:5000"]}"#,
        )
        .unwrap();
        let j = DaemonJson::load(&p).unwrap();
        assert_eq!(j.mirrors[0].as_str(), "https://m.example/hub/");
        assert_eq!(j.mirrors[1].as_str(), "http://10.0.0.5:5000/");
        assert_eq!(j.insecure, ["10.0.0.0/8", "reg:5000"]);
        std::fs::write(&p, r#"{"registry-mirrors": ["m.example"]}"#).unwrap();
        let e = DaemonJson::load(&p).err().unwrap().to_string();
        assert!(
            e.contains("daemon.json: registry-mirrors: \"m.example\""),
            "{e}"
        );
        std::fs::write(&p, "{").unwrap();
        assert!(DaemonJson::load(&p).is_err());
    }
}
