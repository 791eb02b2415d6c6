//! Copies images between a registry and an OCI image layout directory, the
//! way `skopeo copy` does, using only `pluginctl-registry`:
//!
//! ```text
//! copy pull REFERENCE DIR      # registry -> OCI layout (tag = the reference's tag)
//! copy push DIR:TAG REFERENCE  # OCI layout -> registry
//! ```
//!
//! Blobs land in `DIR/blobs/sha256/` by temp file and rename, only after
//! their digest verified. Credentials come from `~/.docker/config.json`;
//! `localhost` and 127.0.0.0/8 are insecure registries, as in Docker.
//! The registry benchmark (`cargo xtask bench registry`) runs this against
//! `skopeo copy`.

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use pluginctl_oci::{Descriptor, Digest, Digester, MediaType, Reference};
use pluginctl_registry::{BlobSinks, BlobSource, Client, FileSource};
use tokio::io::BufWriter;

struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn blob(&self, d: &Digest) -> PathBuf {
        self.dir
            .join("blobs")
            .join(d.algorithm().as_str())
            .join(d.encoded())
    }
}

impl BlobSinks for Layout {
    type Sink = BufWriter<tokio::fs::File>;

    async fn open(&self, desc: &Descriptor) -> io::Result<Option<(Self::Sink, Option<Digester>)>> {
        let path = self.blob(&desc.digest);
        if path.exists() {
            return Ok(None);
        }
        let tmp = path.with_extension("partial");
        let f = tokio::fs::File::create(&tmp).await?;
        Ok(Some((BufWriter::with_capacity(1 << 20, f), None)))
    }

    async fn commit(&self, desc: &Descriptor, sink: Self::Sink) -> io::Result<()> {
        let path = self.blob(&desc.digest);
        let f = sink.into_inner();
        f.sync_all().await?;
        tokio::fs::rename(path.with_extension("partial"), path).await
    }
}

fn write_index(dir: &Path, tag: &str, desc: &Descriptor) -> io::Result<()> {
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": desc.media_type.as_str(),
            "digest": desc.digest.as_str(),
            "size": desc.size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let tmp = dir.join("index.json.tmp");
    std::fs::write(&tmp, index.to_string())?;
    std::fs::rename(tmp, dir.join("index.json"))
}

async fn pull(client: &Client, reference: &str, dir: &Path) -> Result<(), String> {
    let r = Reference::parse(reference).map_err(|e| e.to_string())?;
    let layout = Arc::new(Layout {
        dir: dir.to_owned(),
    });
    std::fs::create_dir_all(dir.join("blobs/sha256"))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let resolved = client
        .pull(&r, None, Arc::clone(&layout))
        .await
        .map_err(|e| e.to_string())?;
    std::fs::write(layout.blob(&resolved.descriptor.digest), &resolved.bytes)
        .map_err(|e| e.to_string())?;
    write_index(dir, r.tag().unwrap_or("latest"), &resolved.descriptor).map_err(|e| e.to_string())
}

async fn push(client: &Client, source: &str, reference: &str) -> Result<(), String> {
    let (dir, tag) = source
        .rsplit_once(':')
        .ok_or_else(|| format!("{source}: expected DIR:TAG"))?;
    let dir = Path::new(dir);
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("index.json")).map_err(|e| format!("{}: {e}", dir.display()))?,
    )
    .map_err(|e| format!("{}/index.json: {e}", dir.display()))?;
    let entry = index["manifests"]
        .as_array()
        .and_then(|m| {
            m.iter()
                .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == tag)
        })
        .ok_or_else(|| format!("{}: no image tagged {tag}", dir.display()))?;
    let digest =
        Digest::parse(entry["digest"].as_str().unwrap_or_default()).map_err(|e| e.to_string())?;
    let media_type = MediaType::parse(entry["mediaType"].as_str().unwrap_or_default());
    let layout = Layout {
        dir: dir.to_owned(),
    };
    let manifest = std::fs::read(layout.blob(&digest)).map_err(|e| e.to_string())?;
    let parsed =
        pluginctl_oci::Manifest::parse(Some(&media_type), &manifest).map_err(|e| e.to_string())?;
    let mut blobs: Vec<(Descriptor, Arc<dyn BlobSource>)> = Vec::new();
    for d in std::iter::once(&parsed.config).chain(&parsed.layers) {
        blobs.push((d.clone(), Arc::new(FileSource(layout.blob(&d.digest)))));
    }
    let r = Reference::parse(reference).map_err(|e| e.to_string())?;
    let pushed = client
        .push(&r, &media_type, &manifest, &blobs, None)
        .await
        .map_err(|e| e.to_string())?;
    println!("{pushed}");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let client = match Client::from_docker_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("copy: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["pull", reference, dir] => pull(&client, reference, Path::new(dir)).await,
        ["push", source, reference] => push(&client, source, reference).await,
        _ => Err("usage: copy pull REFERENCE DIR | copy push DIR:TAG REFERENCE".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("copy: {e}");
            ExitCode::FAILURE
        }
    }
}
