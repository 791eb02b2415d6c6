//! Applies an OCI image layout's layers, lowest first, into a layer store:
//! what `podman pull oci:DIR:TAG` does into containers/storage, for the
//! `cargo xtask bench layers` comparison.
//!
//! ```text
//! cargo run --release -p pluginctl-layers --example apply -- STORE OCI_DIR TAG
//! ```

use std::path::{Path, PathBuf};

use pluginctl_layers::{Compressed, Store};
use pluginctl_oci::{Digest, Index, Manifest};

fn blob(dir: &Path, d: &Digest) -> PathBuf {
    dir.join("blobs")
        .join(d.algorithm().as_str())
        .join(d.encoded())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, store, layout, tag] = args.as_slice() else {
        return Err("usage: apply STORE OCI_DIR TAG".into());
    };
    let layout = Path::new(layout);
    let index = Index::parse(None, &std::fs::read(layout.join("index.json"))?)?;
    let entry = index
        .manifests
        .iter()
        .find(|m| {
            m.annotations
                .as_ref()
                .and_then(|a| a.get("org.opencontainers.image.ref.name"))
                .is_some_and(|n| n == tag)
        })
        .ok_or_else(|| format!("no tag {tag} in {}", layout.display()))?;
    let manifest = Manifest::parse(
        Some(&entry.media_type),
        &std::fs::read(blob(layout, &entry.digest))?,
    )?;
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(layout, &manifest.config.digest))?)?;
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array()
        .ok_or("the config has no rootfs.diff_ids")?;
    let store = Store::open(Path::new(store))?;
    let mut parent = None;
    for (l, diff_id) in manifest.layers.iter().zip(diff_ids) {
        let diff_id = Digest::parse(diff_id.as_str().ok_or("a diff_id is not a string")?)?;
        let f = std::fs::File::open(blob(layout, &l.digest))?;
        let layer = store.apply(
            parent.as_ref(),
            &diff_id,
            std::io::BufReader::with_capacity(1 << 20, f),
            Some(&Compressed {
                digest: l.digest.clone(),
                size: l.size,
                compression: "gzip".to_owned(),
            }),
        )?;
        parent = Some(layer.id);
    }
    println!("{}", parent.map(|p| p.to_string()).unwrap_or_default());
    Ok(())
}
