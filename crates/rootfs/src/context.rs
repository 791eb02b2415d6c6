//! `docker plugin create` contexts: a `config.json` beside a `rootfs/` tree.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::extract::{Extractor, Options, Stats};
use crate::path::{clean, join};
use crate::tar::{Kind, Reader};
use crate::{Error, Result};

/// The largest `config.json` accepted: the plugin config's own limit, one
/// constant for create and install.
pub const MAX_CONFIG_BYTES: u64 = pluginctl_oci::PluginConfig::MAX_BYTES as u64;

/// A context on disk: the bytes of its `config.json` and where its rootfs is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirContext {
    /// The raw `config.json`.
    pub config: Vec<u8>,
    /// The `rootfs/` directory.
    pub rootfs: PathBuf,
}

fn missing(context: &Path, what: &str) -> Error {
    Error::Context(format!(
        "plugin context {} has no {what}",
        context.display()
    ))
}

/// Reads a context directory; a missing `config.json` or `rootfs/` is an
/// error that says which.
pub fn from_dir(dir: &Path) -> Result<DirContext> {
    let config_path = dir.join("config.json");
    let rootfs = dir.join("rootfs");
    let meta = fs::symlink_metadata(&config_path).map_err(|_| missing(dir, "config.json"))?;
    if !meta.is_file() {
        return Err(missing(dir, "config.json file"));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(Error::Context(format!(
            "{} is {} bytes, over the plugin config limit of {MAX_CONFIG_BYTES}",
            config_path.display(),
            meta.len()
        )));
    }
    if !fs::symlink_metadata(&rootfs).is_ok_and(|m| m.is_dir()) {
        return Err(missing(dir, "rootfs directory"));
    }
    let config = fs::read(&config_path).map_err(|e| Error::Io {
        op: "reading",
        path: config_path,
        source: e,
    })?;
    Ok(DirContext { config, rootfs })
}

/// Unpacks a context tar (as `docker plugin create` reads from stdin): the
/// `rootfs/` entries are extracted into `dest` with their names, and
/// hardlink targets under `rootfs/`, rewritten; `config.json` is returned.
/// Other entries are ignored.
pub fn unpack_tar(
    input: impl Read + Send,
    dest: &Path,
    options: &Options,
) -> Result<(Vec<u8>, Stats)> {
    let mut reader = Reader::new(
        crate::decompress::decompress(input, &options.decompress_limits)?,
        options.tar_limits,
    );
    let mut extractor = Extractor::new(dest, options)?;
    let mut config: Option<Vec<u8>> = None;
    let mut saw_rootfs = false;
    while let Some(mut h) = reader.next_header().map_err(crate::extract::unwrap_io)? {
        let parts = clean(&h.path).map_err(|r| Error::Entry {
            path: h.display_path(),
            reason: r.to_owned(),
        })?;
        match parts.as_slice() {
            [b"config.json"] if h.kind == Kind::File => {
                if h.size > MAX_CONFIG_BYTES {
                    return Err(Error::Context(format!(
                        "config.json is {} bytes, over the plugin config limit of {MAX_CONFIG_BYTES}",
                        h.size
                    )));
                }
                let mut bytes = Vec::new();
                reader.data().read_to_end(&mut bytes).map_err(Error::Read)?;
                config = Some(bytes);
            }
            [b"rootfs", rest @ ..] => {
                saw_rootfs = true;
                if rest.is_empty() {
                    continue;
                }
                let original = h.display_path();
                h.path = join(rest);
                if h.kind == Kind::Dir {
                    h.path.push(b'/');
                }
                if h.kind == Kind::Hardlink {
                    let target = clean(&h.link).map_err(|_| Error::Entry {
                        path: original.clone(),
                        reason: "its hardlink target leaves the context".to_owned(),
                    })?;
                    match target.as_slice() {
                        [b"rootfs", t @ ..] if !t.is_empty() => h.link = join(t),
                        _ => {
                            return Err(Error::Entry {
                                path: original,
                                reason: "its hardlink target is not under rootfs/".to_owned(),
                            });
                        }
                    }
                }
                extractor.entry(&h, &mut reader.data())?;
            }
            _ => {}
        }
    }
    reader.drain().map_err(crate::extract::unwrap_io)?;
    let stats = extractor.finish()?;
    let config =
        config.ok_or_else(|| Error::Context("plugin context tar has no config.json".to_owned()))?;
    if !saw_rootfs {
        return Err(Error::Context(
            "plugin context tar has no rootfs directory".to_owned(),
        ));
    }
    Ok((config, stats))
}
