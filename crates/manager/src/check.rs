//! `check`: is an installed plugin still what it was? Its blobs against
//! their digests, and its stored rootfs against a fresh extraction of its
//! layers (every file's type, mode, owner, size, contents and link
//! target), by path.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use pluginctl_oci::{Digest, Digester};

use crate::store::{self, Record};
use crate::{Error, Manager, Result};

/// What differs in one plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Blobs missing or not matching their digest.
    pub blobs: Vec<String>,
    /// Rootfs paths whose type, mode, owner, size, contents or target
    /// changed.
    pub changed: Vec<String>,
    /// Rootfs paths that are gone.
    pub missing: Vec<String>,
    /// Rootfs paths the layers never had.
    pub added: Vec<String>,
}

impl CheckReport {
    /// Whether nothing differs.
    pub fn is_clean(&self) -> bool {
        self.blobs.is_empty()
            && self.changed.is_empty()
            && self.missing.is_empty()
            && self.added.is_empty()
    }
}

/// One entry of a tree, as compared.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    kind: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    /// A file's digest, or a link's target.
    content: Vec<u8>,
}

impl Manager {
    /// Checks the plugin `what`: blobs, then the rootfs against its layers
    /// extracted afresh into the root's `tmp/` (removed after).
    pub fn check(&self, what: &str) -> Result<CheckReport> {
        let record = self.get(what)?;
        let mut report = CheckReport::default();
        let digests = std::iter::once(&record.manifest.digest)
            .chain(std::iter::once(&record.config_digest))
            .chain(record.layers.iter().map(|l| &l.digest));
        for d in digests {
            if let Err(why) = self.blob_matches(d) {
                report.blobs.push(format!("{d}: {why}"));
            }
        }
        if !report.blobs.is_empty() {
            // Layers that do not verify cannot say what the rootfs should be.
            return Ok(report);
        }
        if record.chain.is_some() {
            self.check_layers(&record, &mut report)?;
            return Ok(report);
        }
        let staging = self
            .layout
            .tmp()
            .join(format!("check-{}-{}", record.id, std::process::id()));
        let result = self.compare(&record, &staging, &mut report);
        store::remove_tree(&staging)?;
        result?;
        Ok(report)
    }

    /// `Ok` when the blob `d` is there and hashes to its name.
    fn blob_matches(&self, d: &Digest) -> std::result::Result<(), String> {
        let mut f = self.content.open_blob(d).map_err(|e| e.to_string())?;
        let mut h = Digester::new(d.algorithm());
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let actual = h.finish();
        if &actual == d {
            Ok(())
        } else {
            Err(format!("its bytes hash to {actual}"))
        }
    }

    /// Each layer of the chain against its tar-split; a path is shown with
    /// the layer it belongs to.
    fn check_layers(&self, record: &Record, report: &mut CheckReport) -> Result<()> {
        for id in self.chain_of(record)? {
            let r = self
                .layers
                .check(&id.to_string())
                .map_err(|e| Error::State(format!("plugin {}: {e}", record.familiar_name())))?;
            let short = &id.encoded()[..12];
            let name = |p: String| format!("{p} (layer {short})");
            report.changed.extend(r.changed.into_iter().map(name));
            report.missing.extend(r.missing.into_iter().map(name));
            report.added.extend(r.added.into_iter().map(name));
        }
        Ok(())
    }

    fn compare(&self, record: &Record, staging: &Path, report: &mut CheckReport) -> Result<()> {
        self.extract_into(record, staging)?;
        let expected = tree(staging)?;
        let actual = tree(&self.rootfs(record))?;
        for (path, e) in &expected {
            match actual.get(path) {
                None => report.missing.push(shown(path)),
                Some(a) if a != e => report.changed.push(shown(path)),
                Some(_) => {}
            }
        }
        report.added = actual
            .keys()
            .filter(|p| !expected.contains_key(*p))
            .map(|p| shown(p))
            .collect();
        Ok(())
    }
}

fn shown(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

/// Every entry under `root` by relative path, without following links.
fn tree(root: &Path) -> Result<BTreeMap<Vec<u8>, Entry>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let e = e.map_err(|e| Error::io(&dir, e))?;
            let path = e.path();
            let m = std::fs::symlink_metadata(&path).map_err(|e| Error::io(&path, e))?;
            let ft = m.file_type();
            let content = if ft.is_file() {
                let mut f = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
                let mut h = Digester::new(pluginctl_oci::Algorithm::Sha256);
                std::io::copy(&mut f, &mut h).map_err(|e| Error::io(&path, e))?;
                h.finish().to_string().into_bytes()
            } else if ft.is_symlink() {
                std::fs::read_link(&path)
                    .map_err(|e| Error::io(&path, e))?
                    .as_os_str()
                    .as_bytes()
                    .to_vec()
            } else {
                Vec::new()
            };
            if ft.is_dir() {
                stack.push(path.clone());
            }
            let rel = path
                .strip_prefix(root)
                .expect("under the root")
                .as_os_str()
                .as_bytes()
                .to_vec();
            out.insert(
                rel,
                Entry {
                    kind: m.mode() & 0o170_000,
                    mode: m.mode() & 0o7777,
                    uid: m.uid(),
                    gid: m.gid(),
                    size: if ft.is_file() { m.len() } else { 0 },
                    content,
                },
            );
        }
    }
    Ok(out)
}
