//! Small valid images for registry tests, and OCI image layouts on disk
//! (what `skopeo copy oci:DIR:TAG` reads and writes).

use std::io::Write as _;
use std::path::Path;

use pluginctl_oci::{Descriptor, Digest, Manifest, MediaType};
use pluginctl_rootfs::tar::{Header, Kind, Writer};

/// A Docker schema2 image: gzip tar layers and a config whose `diff_ids`
/// match them, so every tool accepts it.
#[derive(Debug, Clone)]
pub struct Image {
    /// The config blob.
    pub config: Vec<u8>,
    /// The compressed layers, lowest first.
    pub layers: Vec<Vec<u8>>,
    /// The manifest bytes.
    pub manifest: Vec<u8>,
    /// The manifest's media type.
    pub media_type: MediaType,
}

impl Image {
    /// One layer per entry of `sizes`, each a tar with one file of that many
    /// pattern bytes, gzip level 1; a Docker schema2 manifest.
    pub fn new(seed: u64, sizes: &[usize]) -> Image {
        let (config, layers) = Image::parts(seed, sizes);
        Image::assemble(
            config,
            MediaType::parse("application/vnd.docker.container.image.v1+json"),
            layers,
        )
    }

    /// The same content under an OCI image manifest (what OCI layouts hold).
    pub fn new_oci(seed: u64, sizes: &[usize]) -> Image {
        let (config, layers) = Image::parts(seed, sizes);
        let layer_type = "application/vnd.oci.image.layer.v1.tar+gzip";
        let d = |mt: &str, b: &[u8]| serde_json::json!({"mediaType": mt, "digest": Digest::of_bytes(b).as_str(), "size": b.len()});
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": d("application/vnd.oci.image.config.v1+json", &config),
            "layers": layers.iter().map(|l| d(layer_type, l)).collect::<Vec<_>>(),
        });
        Image {
            manifest: manifest.to_string().into_bytes(),
            media_type: MediaType::parse("application/vnd.oci.image.manifest.v1+json"),
            config,
            layers,
        }
    }

    fn parts(seed: u64, sizes: &[usize]) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for (i, &size) in sizes.iter().enumerate() {
            let data = crate::pattern(seed.wrapping_mul(31).wrapping_add(i as u64), size);
            let mut w = Writer::new(Vec::new());
            let mut h = Header::new(Kind::File, format!("layer{i}/data").as_bytes());
            h.size = size as u64;
            h.mode = 0o644;
            w.append(&h, &mut &data[..]).expect("tar in memory");
            let tar = w.finish().expect("tar in memory");
            diff_ids.push(Digest::of_bytes(&tar).to_string());
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&tar).expect("gzip in memory");
            layers.push(gz.finish().expect("gzip in memory"));
        }
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["/layer0/data"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [],
        })
        .to_string()
        .into_bytes();
        (config, layers)
    }

    /// A manifest over `config` (of `config_type`) and gzip `layers`.
    pub fn assemble(config: Vec<u8>, config_type: MediaType, layers: Vec<Vec<u8>>) -> Image {
        let layer_type = MediaType::parse("application/vnd.docker.image.rootfs.diff.tar.gzip");
        let m = Manifest::docker(
            Descriptor::of_bytes(config_type, &config),
            layers
                .iter()
                .map(|l| Descriptor::of_bytes(layer_type.clone(), l))
                .collect(),
        );
        Image {
            manifest: m.to_vec(),
            media_type: m.media_type.clone().expect("schema2 has a media type"),
            config,
            layers,
        }
    }

    /// The parsed manifest.
    pub fn parsed(&self) -> Manifest {
        Manifest::parse(Some(&self.media_type), &self.manifest).expect("own manifest")
    }

    /// Every blob with its descriptor: config first, then layers.
    pub fn blobs(&self) -> Vec<(Descriptor, Vec<u8>)> {
        let m = self.parsed();
        let mut out = vec![(m.config.clone(), self.config.clone())];
        out.extend(m.layers.iter().cloned().zip(self.layers.iter().cloned()));
        out
    }

    /// The manifest digest.
    pub fn digest(&self) -> Digest {
        Digest::of_bytes(&self.manifest)
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_of(bytes: &[u8]) -> String {
    Digest::of_bytes(bytes).to_string()
}

fn blob_path(dir: &Path, d: &Digest) -> std::path::PathBuf {
    dir.join("blobs")
        .join(d.algorithm().as_str())
        .join(d.encoded())
}

/// Writes `image` as an OCI image layout in `dir` under `tag`.
pub fn write_oci_layout(dir: &Path, tag: &str, image: &Image) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("layout dir");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("oci-layout");
    for (d, bytes) in image.blobs() {
        std::fs::write(blob_path(dir, &d.digest), bytes).expect("blob");
    }
    let md = image.digest();
    std::fs::write(blob_path(dir, &md), &image.manifest).expect("manifest");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": image.media_type.as_str(),
            "digest": md.as_str(),
            "size": image.manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).expect("index.json");
}

/// Reads what `skopeo copy … dir:DIR` wrote: the manifest bytes and the
/// blobs, each in a file named by its hex digest.
pub fn read_dir_transport(dir: &Path) -> (Vec<u8>, std::collections::HashMap<String, Vec<u8>>) {
    let manifest = std::fs::read(dir.join("manifest.json")).expect("manifest.json");
    let mut blobs = std::collections::HashMap::new();
    for e in std::fs::read_dir(dir).expect("dir") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().into_owned();
        if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            blobs.insert(name, std::fs::read(e.path()).expect("blob"));
        }
    }
    (manifest, blobs)
}

/// What [`read_oci_layout`] returns: manifest bytes, media type, blobs.
pub type Layout = (Vec<u8>, MediaType, Vec<(Descriptor, Vec<u8>)>);

/// Reads the image tagged `tag` from an OCI layout (as skopeo writes it):
/// manifest bytes, its media type, and every blob it names.
pub fn read_oci_layout(dir: &Path, tag: &str) -> Layout {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index.json"))
            .expect("index.json is JSON");
    let entry = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no {tag} in {}", dir.display()));
    let digest = Digest::parse(entry["digest"].as_str().expect("digest")).expect("digest");
    let media_type = MediaType::parse(entry["mediaType"].as_str().expect("mediaType"));
    let manifest = std::fs::read(blob_path(dir, &digest)).expect("manifest blob");
    let m = Manifest::parse(Some(&media_type), &manifest).expect("manifest");
    let mut blobs = vec![(
        m.config.clone(),
        std::fs::read(blob_path(dir, &m.config.digest)).expect("config"),
    )];
    for l in &m.layers {
        blobs.push((
            l.clone(),
            std::fs::read(blob_path(dir, &l.digest)).expect("layer"),
        ));
    }
    (manifest, media_type, blobs)
}
