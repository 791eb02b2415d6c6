//! What a root holds, as `docker system df` shows it: plugins, layers and
//! blobs; what is shared, what is unique, what `gc` would reclaim.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use pluginctl_oci::Digest;

use crate::layered::DriverChoice;
use crate::{Error, Manager, Result};

/// One plugin's share of the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginUsage {
    /// Its familiar name.
    pub name: String,
    /// Its ID.
    pub id: String,
    /// Whether it is enabled.
    pub enabled: bool,
    /// Bytes of its rootfs (its layers' tars, or its flattened files).
    pub size: u64,
    /// The part of `size` in layers another plugin uses too.
    pub shared: u64,
    /// Its layers in the layer store (0 for a flattened rootfs).
    pub layers: usize,
}

/// One layer and who uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerUsage {
    /// The layer.
    pub layer: pluginctl_layers::Layer,
    /// The plugins whose chain holds it, by familiar name.
    pub plugins: Vec<String>,
}

/// One blob and how many plugins reference it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobUsage {
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Plugins that reference it.
    pub users: usize,
}

/// The whole root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The storage driver for new plugins, and why.
    pub driver: DriverChoice,
    /// Every complete plugin.
    pub plugins: Vec<PluginUsage>,
    /// Every complete layer.
    pub layers: Vec<LayerUsage>,
    /// Every blob.
    pub blobs: Vec<BlobUsage>,
}

impl Usage {
    /// Bytes of layers no plugin uses.
    pub fn reclaimable_layers(&self) -> u64 {
        self.layers
            .iter()
            .filter(|l| l.plugins.is_empty())
            .map(|l| l.layer.size)
            .sum()
    }

    /// Bytes of blobs no plugin references.
    pub fn reclaimable_blobs(&self) -> u64 {
        self.blobs
            .iter()
            .filter(|b| b.users == 0)
            .map(|b| b.size)
            .sum()
    }
}

impl Manager {
    /// What the root holds and who uses it.
    pub fn usage(&self) -> Result<Usage> {
        let records = self.list()?;
        let all = self
            .layers
            .layers()
            .map_err(|e| Error::State(format!("the layer store: {e}")))?;
        let mut users: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
        let mut chains = Vec::new();
        for r in &records {
            let chain = self.chain_of(r)?;
            for id in &chain {
                users.entry(id.clone()).or_default().push(r.familiar_name());
            }
            chains.push(chain);
        }
        let size_of = |id: &Digest| all.iter().find(|l| &l.id == id).map_or(0, |l| l.size);
        let mut plugins = Vec::new();
        for (r, chain) in records.iter().zip(&chains) {
            let (size, shared) = if r.chain.is_some() {
                let size = chain.iter().map(size_of).sum();
                let shared = chain
                    .iter()
                    .filter(|id| users.get(*id).is_some_and(|u| u.len() > 1))
                    .map(size_of)
                    .sum();
                (size, shared)
            } else {
                (tree_bytes(&self.rootfs(r)), 0)
            };
            plugins.push(PluginUsage {
                name: r.familiar_name(),
                id: r.id.clone(),
                enabled: r.enabled,
                size,
                shared,
                layers: chain.len(),
            });
        }
        let layers = all
            .into_iter()
            .filter(|l| !l.incomplete)
            .map(|l| LayerUsage {
                plugins: users.get(&l.id).cloned().unwrap_or_default(),
                layer: l,
            })
            .collect();
        let mut refs: BTreeMap<Digest, BTreeSet<&str>> = BTreeMap::new();
        for r in &records {
            for d in r.roots() {
                refs.entry(d).or_default().insert(&r.id);
            }
        }
        let blobs = self
            .content
            .list()?
            .into_iter()
            .map(|b| BlobUsage {
                users: refs.get(&b.digest).map_or(0, BTreeSet::len),
                digest: b.digest,
                size: b.size,
            })
            .collect();
        Ok(Usage {
            driver: self.driver().clone(),
            plugins,
            layers,
            blobs,
        })
    }
}

/// Bytes of the regular files under `dir` (not following links).
fn tree_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    total
}
