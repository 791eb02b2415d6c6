//! Writes the registry benchmark's input: an OCI image layout with one image
//! tagged `bench` of `LAYERS` gzip tar layers totalling about `MIB` MiB
//! compressed (incompressible xorshift bytes, so compressed ≈ raw).
//!
//! ```text
//! mkbench DIR MIB LAYERS
//! ```

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use pluginctl_oci::{Digest, Digester};
use pluginctl_rootfs::tar::{Header, Kind, Writer};

struct Tee<W: Write> {
    out: W,
    digester: Digester,
    len: u64,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.digester.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

struct Xorshift(u64, u64);

impl Read for Xorshift {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(usize::try_from(self.1).unwrap_or(usize::MAX));
        for chunk in buf[..n].chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let b = self.0.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        self.1 -= n as u64;
        Ok(n)
    }
}

fn blob_path(dir: &Path, d: &Digest) -> std::path::PathBuf {
    dir.join("blobs/sha256").join(d.encoded())
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, mib, layers] = args.as_slice() else {
        eprintln!("usage: mkbench DIR MIB LAYERS");
        std::process::exit(2);
    };
    let dir = Path::new(dir);
    let mib: u64 = mib.parse().expect("MIB");
    let layers: u64 = layers.parse().expect("LAYERS");
    std::fs::create_dir_all(dir.join("blobs/sha256"))?;
    let per_layer = (mib << 20) / layers;
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for i in 0..layers {
        let tmp = dir.join("layer.tmp");
        let file = Tee {
            out: BufWriter::new(File::create(&tmp)?),
            digester: Digester::default(),
            len: 0,
        };
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        let raw = Tee {
            out: gz,
            digester: Digester::default(),
            len: 0,
        };
        let mut tar = Writer::new(raw);
        let mut h = Header::new(Kind::File, format!("data/layer{i}.bin").as_bytes());
        h.size = per_layer;
        h.mode = 0o644;
        tar.append(
            &h,
            &mut Xorshift(0x9E37_79B9_7F4A_7C15 ^ (i + 1), per_layer),
        )?;
        let raw = tar.finish()?;
        diff_ids.push(raw.digester.finish().to_string());
        let mut file = raw.out.finish()?;
        file.flush()?;
        let digest = file.digester.finish();
        std::fs::rename(&tmp, blob_path(dir, &digest))?;
        descs.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest.as_str(), "size": file.len,
        }));
    }
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
    .to_string();
    let cd = Digest::of_bytes(config.as_bytes());
    std::fs::write(blob_path(dir, &cd), &config)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": cd.as_str(), "size": config.len()},
        "layers": descs,
    })
    .to_string();
    let md = Digest::of_bytes(manifest.as_bytes());
    std::fs::write(blob_path(dir, &md), &manifest)?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": md.as_str(), "size": manifest.len(),
                       "annotations": {"org.opencontainers.image.ref.name": "bench"}}],
    });
    std::fs::write(dir.join("index.json"), index.to_string())
}
