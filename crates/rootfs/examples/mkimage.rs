//! Generates a deterministic multi-layer image for benchmarks: an OCI
//! layout with gzip layers (tag `bench`; the same layers as a managed
//! plugin, tag `plugin`) and a `docker save` tarball with the same layers
//! uncompressed.
//!
//! ```text
//! cargo run --release -p pluginctl-rootfs --example mkimage -- OUT_DIR [MIB]
//! ```
//! MIB (default 1024) scales the uncompressed size; about 36 entries per MiB.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use pluginctl_oci::{Descriptor, Digest, Index, Manifest, MediaType};
use pluginctl_rootfs::compress::ParallelGzip;
use pluginctl_rootfs::tar::{Header, Kind, Writer};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Half random, half text: compresses about two to one, like real files.
fn content(rng: &mut Rng, len: usize) -> Vec<u8> {
    const TEXT: &[u8] = b"pluginctl benchmark data: the quick brown fox jumps over the lazy dog. ";
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        if rng.next() & 1 == 0 {
            for _ in 0..8 {
                v.extend_from_slice(&rng.next().to_le_bytes());
            }
        } else {
            v.extend_from_slice(&TEXT[..64]);
        }
    }
    v.truncate(len);
    v
}

fn file(w: &mut Writer<impl Write>, path: &str, data: &[u8], mode: u32) -> io::Result<()> {
    let mut h = Header::new(Kind::File, path.as_bytes());
    h.size = data.len() as u64;
    h.mode = mode;
    h.mtime = 1_700_000_000;
    w.append(&h, &mut &data[..])
}

fn dir(w: &mut Writer<impl Write>, path: &str) -> io::Result<()> {
    let mut h = Header::new(Kind::Dir, format!("{path}/").as_bytes());
    h.mtime = 1_700_000_000;
    w.append(&h, &mut io::empty())
}

fn layer(out: &Path, n: usize, mib: u64, rng: &mut Rng) -> io::Result<()> {
    let mut w = Writer::new(BufWriter::with_capacity(1 << 20, File::create(out)?));
    let scale = |x: u64| (x * mib / 1024).max(1);
    let (small, big_count, big_mib) = if n == 0 {
        (scale(20_000), 2, scale(150))
    } else {
        (scale(4_000), 1, scale(100))
    };
    let per_dir = 50;
    for d in 0..small.div_ceil(per_dir) {
        let dpath = format!("usr/lib/l{n}/pkg{d:05}");
        if d == 0 {
            dir(&mut w, "usr")?;
            dir(&mut w, "usr/lib")?;
            dir(&mut w, &format!("usr/lib/l{n}"))?;
        }
        dir(&mut w, &dpath)?;
        for f in 0..per_dir.min(small - d * per_dir) {
            let len = usize::try_from(512 + rng.below(15_872)).unwrap_or(4096);
            let mode = if f % 17 == 0 { 0o755 } else { 0o644 };
            file(
                &mut w,
                &format!("{dpath}/f{f:03}.so"),
                &content(rng, len),
                mode,
            )?;
        }
    }
    dir(&mut w, "opt")?;
    for b in 0..big_count {
        let data = content(rng, usize::try_from(big_mib << 20).unwrap_or(1 << 20));
        file(&mut w, &format!("opt/blob-{n}-{b}.bin"), &data, 0o644)?;
    }
    if n > 0 {
        // Whiteouts and overwrites of the base layer, and an opaque
        // directory; no name twice in one layer (containers/storage
        // refuses such a layer, and the layer benchmark runs podman).
        let mut seen = std::collections::HashSet::new();
        for k in 0..scale(200) {
            let d = rng.below(scale(20_000) / per_dir);
            let f = rng.below(per_dir);
            // A whiteout and a file of one name in one layer are not an
            // image either: `seen` holds the names either touches.
            if seen.insert(format!("usr/lib/l0/pkg{d:05}/f{f:03}.so")) {
                let whiteout = format!("usr/lib/l0/pkg{d:05}/.wh.f{f:03}.so");
                file(&mut w, &whiteout, b"", 0o644)?;
            }
            let over = format!(
                "usr/lib/l0/pkg{:05}/f000.so",
                (d + 1) % (scale(20_000) / per_dir)
            );
            // The rewrite's contents are drawn whether written or not, so
            // the rest of the image does not depend on the duplicates.
            if k % 2 == 0 {
                let data = content(rng, 4096);
                if seen.insert(over.clone()) {
                    file(&mut w, &over, &data, 0o644)?;
                }
            }
        }
        file(
            &mut w,
            &format!("usr/lib/l0/pkg{:05}/.wh..wh..opq", n * 7),
            b"",
            0o644,
        )?;
    }
    w.finish()?.flush()
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first() else {
        eprintln!("usage: mkimage OUT_DIR [MIB]");
        std::process::exit(2);
    };
    let mib: u64 = args.get(1).and_then(|m| m.parse().ok()).unwrap_or(1024);
    let out = Path::new(out);
    let raw = out.join("layers");
    let blobs = out.join("oci/blobs/sha256");
    fs::create_dir_all(&raw)?;
    fs::create_dir_all(&blobs)?;
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut names = Vec::new();
    // The compressed layers in order, for benchmarks that run pigz on them.
    let mut gz_list = String::new();
    for n in 0..5 {
        let tar = raw.join(format!("layer{n}.tar"));
        layer(&tar, n, mib, &mut rng)?;
        let bytes = fs::read(&tar)?;
        diff_ids.push(Digest::of_bytes(&bytes).to_string());
        let mut gz = ParallelGzip::new(
            Vec::new(),
            6,
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        );
        gz.write_all(&bytes)?;
        let gz = gz.finish()?;
        let d = Digest::of_bytes(&gz);
        fs::write(blobs.join(d.encoded()), &gz)?;
        gz_list.push_str(&blobs.join(d.encoded()).display().to_string());
        gz_list.push('\n');
        descs.push(Descriptor::new(MediaType::OciLayerGzip, d, gz.len() as u64));
        names.push(format!("layers/layer{n}.tar"));
    }
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        diff_ids.join("\",\"")
    );
    let cd = Digest::of_bytes(config.as_bytes());
    fs::write(blobs.join(cd.encoded()), &config)?;
    let mut m = Manifest::docker(
        Descriptor::new(MediaType::OciConfig, cd, config.len() as u64),
        descs,
    );
    m.media_type = Some(MediaType::OciManifest);
    let mb = m.to_vec();
    let md = Digest::of_bytes(&mb);
    fs::write(blobs.join(md.encoded()), &mb)?;
    let mut entry = Descriptor::new(MediaType::OciManifest, md, mb.len() as u64);
    entry.annotations = Some(
        [(
            "org.opencontainers.image.ref.name".to_owned(),
            "bench".to_owned(),
        )]
        .into(),
    );
    // The same layers as a managed plugin (tag `plugin`): a plugin config,
    // for the benchmarks that install it.
    let plugin_config = format!(
        r#"{{"description":"benchmark plugin","entrypoint":["/bin/true"],"interface":{{"types":["docker.volumedriver/1.0"],"socket":"b.sock"}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        diff_ids.join("\",\"")
    );
    let pcd = Digest::of_bytes(plugin_config.as_bytes());
    fs::write(blobs.join(pcd.encoded()), &plugin_config)?;
    let pm = Manifest::docker(
        Descriptor::new(MediaType::Plugin, pcd, plugin_config.len() as u64),
        m.layers.clone(),
    );
    let pmb = pm.to_vec();
    let pmd = Digest::of_bytes(&pmb);
    fs::write(blobs.join(pmd.encoded()), &pmb)?;
    let mut plugin_entry = Descriptor::new(MediaType::DockerManifest, pmd, pmb.len() as u64);
    plugin_entry.annotations = Some(
        [(
            "org.opencontainers.image.ref.name".to_owned(),
            "plugin".to_owned(),
        )]
        .into(),
    );
    let index = Index::oci(vec![entry, plugin_entry]);
    fs::write(out.join("oci/index.json"), index.to_vec())?;
    fs::write(
        out.join("oci/oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    // docker save: the uncompressed layers and a manifest.json.
    let mut w = Writer::new(BufWriter::with_capacity(
        1 << 20,
        File::create(out.join("save.tar"))?,
    ));
    for name in &names {
        let data = File::open(out.join(name))?;
        let mut h = Header::new(Kind::File, name.as_bytes());
        h.size = data.metadata()?.len();
        w.append(&h, &mut io::BufReader::new(data))?;
    }
    let manifest = format!(
        r#"[{{"Config":"config.json","RepoTags":["bench:latest"],"Layers":["{}"]}}]"#,
        names.join("\",\"")
    );
    file(&mut w, "manifest.json", manifest.as_bytes(), 0o644)?;
    w.finish()?.flush()?;
    fs::write(out.join("gz-layers.txt"), gz_list)?;
    println!("{}", out.display());
    Ok(())
}
