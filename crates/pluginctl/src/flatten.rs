//! `pluginctl flatten`: layers to one tar or directory.
//!
//! INPUT is a `docker save` tarball (or `-` for one on stdin), `oci:DIR[:TAG]`
//! for an OCI image layout, or one or more layer files (lowest first).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use pluginctl_manager::oci::{Digest, Digester, Document, Index, MAX_MANIFEST_BYTES, Platform};
use pluginctl_manager::rootfs::{self, extract, flatten};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// One uncompressed tar
    Tar,
    /// A directory
    Dir,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// What to write
    #[arg(long, value_enum, default_value = "tar")]
    format: Format,
    /// Where to write: a file, a directory (with --format dir), or - for stdout
    #[arg(short, long)]
    output: String,
    #[arg(
        required = true,
        help = "A docker-save tarball (- for stdin), oci:DIR[:TAG], or layer files"
    )]
    inputs: Vec<String>,
}

/// A layer inside a file: a byte range and, when known, its digest.
#[derive(Debug, Clone)]
struct Span {
    path: PathBuf,
    offset: u64,
    size: u64,
    digest: Option<Digest>,
    name: String,
}

struct Sources(Vec<Span>);

impl flatten::Layers for Sources {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn open(&self, i: usize) -> rootfs::Result<Box<dyn Read + Send + '_>> {
        let s = &self.0[i];
        let mut f = File::open(&s.path).map_err(|e| rootfs::Error::Io {
            op: "opening",
            path: s.path.clone(),
            source: e,
        })?;
        f.seek(SeekFrom::Start(s.offset))
            .map_err(|e| rootfs::Error::Io {
                op: "reading",
                path: s.path.clone(),
                source: e,
            })?;
        Ok(Box::new(Verify {
            inner: crate::interrupt::Checked(f).take(s.size),
            digester: s.digest.as_ref().map(|d| Digester::new(d.algorithm())),
            span: s,
            seen: 0,
        }))
    }

    /// A layer with no digest to check (an older `docker save`'s
    /// `<id>/layer.tar`, a layer file named on the command line) is a plain
    /// byte range: flatten may seek over it and copy from it in the kernel.
    /// One with a digest is always read through `Verify`.
    fn region(&self, i: usize) -> rootfs::Result<Option<flatten::Region>> {
        let s = &self.0[i];
        if s.digest.is_some() {
            return Ok(None);
        }
        let file = File::open(&s.path).map_err(|e| rootfs::Error::Io {
            op: "opening",
            path: s.path.clone(),
            source: e,
        })?;
        let len = file
            .metadata()
            .map_err(|e| rootfs::Error::Io {
                op: "reading",
                path: s.path.clone(),
                source: e,
            })?
            .len();
        if s.offset + s.size > len {
            return Err(rootfs::Error::Io {
                op: "reading",
                path: s.path.clone(),
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("layer {} runs past the end of the file", s.name),
                ),
            });
        }
        Ok(Some(flatten::Region {
            file,
            offset: s.offset,
            len: s.size,
        }))
    }
}

/// Checks size and digest as the layer streams past; fails at the end
/// rather than let unverified bytes count as the layer.
struct Verify<'a> {
    inner: io::Take<crate::interrupt::Checked<File>>,
    digester: Option<Digester>,
    span: &'a Span,
    seen: u64,
}

impl Read for Verify<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen += n as u64;
        if let Some(d) = &mut self.digester {
            d.update(&buf[..n]);
        }
        if n == 0 && !buf.is_empty() {
            if self.seen != self.span.size {
                return Err(io::Error::other(format!(
                    "layer {} is {} bytes, expected {}",
                    self.span.name, self.seen, self.span.size
                )));
            }
            if let (Some(d), Some(want)) = (self.digester.take(), &self.span.digest) {
                let got = d.finish();
                if &got != want {
                    return Err(io::Error::other(format!(
                        "layer {} has digest {got}, expected {want}",
                        self.span.name
                    )));
                }
            }
        }
        Ok(n)
    }
}

pub(crate) fn run(args: &Args) -> Result<()> {
    // Reads stop at a signal; the temporary output goes with the error.
    crate::interrupt::cooperate();
    if args.output != "-" {
        remove_stale(&parent_of(Path::new(&args.output)));
    }
    // A compressed docker save (or one on stdin) is read from a plain
    // spool: its layers are found by offset and read twice.
    let mut spool = None;
    let sources = match args.inputs.as_slice() {
        [one] if one.starts_with("oci:") => oci_layout(&one["oci:".len()..])?,
        [one] if one == "-" => {
            let input =
                rootfs::decompress::decompress(io::stdin(), &rootfs::decompress::Limits::default())
                    .context("reading stdin")?;
            let (tmp, registered) = spool_plain(input, "stdin")?;
            let s = docker_save(tmp.path(), "stdin")?
                .ok_or_else(|| anyhow!("stdin is not a docker save archive (no manifest.json)"))?;
            spool = Some((tmp, registered));
            s
        }
        [one] => match input_kind(Path::new(one))? {
            InputKind::Save => docker_save(Path::new(one), one)?
                .ok_or_else(|| anyhow!("{one}: not a docker save archive"))?,
            InputKind::CompressedSave => {
                let file = File::open(one).with_context(|| format!("opening {one}"))?;
                let input =
                    rootfs::decompress::decompress(file, &rootfs::decompress::Limits::default())
                        .with_context(|| format!("reading {one}"))?;
                let (tmp, registered) = spool_plain(input, one)?;
                let s = docker_save(tmp.path(), one)?
                    .ok_or_else(|| anyhow!("{one}: not a docker save archive"))?;
                spool = Some((tmp, registered));
                s
            }
            InputKind::Layer => layer_files(&args.inputs)?,
        },
        many => {
            for one in many {
                if one == "-" {
                    bail!("- (stdin) takes a docker save archive alone; name layer files by path");
                }
                if one.starts_with("oci:") {
                    bail!("{one}: an OCI layout is flattened alone, not among layer files");
                }
                if input_kind(Path::new(one))? != InputKind::Layer {
                    bail!(
                        "{one} is a docker save archive; it is flattened alone, not among layer files"
                    );
                }
            }
            layer_files(many)?
        }
    };
    let mut options = flatten::Options::default();
    match args.format {
        Format::Tar if args.output == "-" => {
            let stdout = io::stdout().lock();
            let mut out = io::BufWriter::with_capacity(1 << 20, stdout);
            flatten::flatten(&sources, &mut out, &options)?;
            out.flush()?;
        }
        Format::Tar => {
            let target = PathBuf::from(&args.output);
            let tmp = temp_beside(&target)?;
            let registered = crate::interrupt::remove_on_interrupt(tmp.path());
            // Compressed layers are decompressed once, spooled beside the
            // output (where there must be room for it anyway).
            options.spool_dir = Some(parent_of(&target));
            let written = || -> Result<()> {
                flatten::flatten_file(&sources, tmp.as_file(), &options)?;
                tmp.as_file().sync_all()?;
                // tempfile creates 0600; an output is an ordinary file.
                let mut p = tmp.as_file().metadata()?.permissions();
                std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o644);
                fs::set_permissions(tmp.path(), p)?;
                Ok(())
            };
            written().with_context(|| format!("writing {}", target.display()))?;
            tmp.persist(&target)
                .map_err(|e| e.error)
                .with_context(|| format!("writing {}", target.display()))?;
            drop(registered);
        }
        Format::Dir => {
            if args.output == "-" {
                bail!("--format dir needs a directory, not -");
            }
            let target = PathBuf::from(&args.output);
            if fs::symlink_metadata(&target).is_ok() {
                bail!(
                    "{} exists; flatten writes a new directory",
                    target.display()
                );
            }
            let parent = output_dir(&target)?;
            let staging = tempfile::Builder::new()
                .prefix(&temp_prefix())
                .tempdir_in(&parent)
                .with_context(|| format!("writing {}", target.display()))?;
            let registered = crate::interrupt::remove_on_interrupt(staging.path());
            let opts = extract::Options::default();
            let mut spans = Vec::new();
            for i in 0..flatten::Layers::len(&sources) {
                spans.push(flatten::Layers::open(&sources, i)?);
            }
            extract::apply_layers(staging.path(), spans, &opts)?;
            let staged = staging.keep();
            fs::rename(&staged, &target)
                .with_context(|| format!("renaming into {}", target.display()))?;
            drop(registered);
        }
    }
    drop(spool);
    Ok(())
}

/// What a single input file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InputKind {
    /// A plain `docker save` tar.
    Save,
    /// A `docker save` tar behind gzip or zstd (`docker load` takes it).
    CompressedSave,
    /// A layer (plain or compressed).
    Layer,
}

/// Tells a docker save archive from a layer. A plain tar is a save when
/// it has a top-level `manifest.json`; a compressed one is read only until
/// an entry that no save archive has (a layer's first entry, as a rule).
fn input_kind(path: &Path) -> Result<InputKind> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut head = [0u8; 512];
    let n = read_full(&mut f, &mut head).with_context(|| format!("reading {}", path.display()))?;
    match rootfs::decompress::detect(&head[..n]) {
        Some(pluginctl_manager::oci::Compression::None) => {
            return Ok(
                if index_tar(path)?.is_some_and(|m| m.contains_key("manifest.json")) {
                    InputKind::Save
                } else {
                    InputKind::Layer
                },
            );
        }
        None => return Ok(InputKind::Layer),
        Some(_) => {}
    }
    f.seek(SeekFrom::Start(0))?;
    let Ok(plain) = rootfs::decompress::decompress(f, &rootfs::decompress::Limits::default())
    else {
        return Ok(InputKind::Layer); // the layer's own reading says why
    };
    let mut reader = rootfs::tar::Reader::new(plain, rootfs::tar::Limits::default());
    let mut manifest = false;
    while let Ok(Some(h)) = reader.next_header() {
        let name = String::from_utf8_lossy(&h.path);
        let name = name.trim_start_matches("./").trim_end_matches('/');
        if !in_save_archive(name) {
            return Ok(InputKind::Layer);
        }
        manifest |= name == "manifest.json";
    }
    Ok(if manifest {
        InputKind::CompressedSave
    } else {
        InputKind::Layer
    })
}

/// Whether a docker save archive (legacy or OCI form) can hold `name`.
fn in_save_archive(name: &str) -> bool {
    let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let first = name.split('/').next().unwrap_or_default();
    matches!(
        name,
        "manifest.json" | "index.json" | "oci-layout" | "repositories" | "blobs"
    ) || first == "blobs"
        || hex64(first)
        || name.strip_suffix(".json").is_some_and(hex64)
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// `.pluginctl-flatten-<pid>-`: the PID tells a later run whether the
/// process that made a temporary file is gone.
fn temp_prefix() -> String {
    format!("{TEMP_PREFIX}{}-", std::process::id())
}

const TEMP_PREFIX: &str = ".pluginctl-flatten-";

/// Removes what killed flattens left in `dir`: temporary files and
/// staging directories of our naming whose process is gone.
fn remove_stale(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let path = e.path();
        let removed = if e.file_type().is_ok_and(|t| t.is_dir()) {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        match removed {
            Ok(()) => tracing::info!(path = %path.display(), "removed what a killed flatten left"),
            Err(err) => tracing::warn!(path = %path.display(), "removing a stale file: {err}"),
        }
    }
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// The directory an output goes in, which must exist: an error names the
/// output as given (tempfile's would name its own temporary file).
fn output_dir(target: &Path) -> Result<PathBuf> {
    let dir = parent_of(target);
    fs::metadata(&dir).with_context(|| format!("writing {}", target.display()))?;
    Ok(dir)
}

fn temp_beside(target: &Path) -> Result<tempfile::NamedTempFile> {
    output_dir(target)?;
    tempfile::Builder::new()
        .prefix(&temp_prefix())
        .tempfile_in(parent_of(target))
        .with_context(|| format!("writing {}", target.display()))
}

/// A plain copy of `input` in a temporary file, removed on an interrupt
/// too: stdin cannot be read twice, and a compressed archive cannot be
/// read by offset.
fn spool_plain(
    mut input: impl Read,
    what: &str,
) -> Result<(tempfile::NamedTempFile, crate::interrupt::Registered)> {
    let mut tmp = tempfile::Builder::new()
        .prefix(&temp_prefix())
        .tempfile()
        .with_context(|| format!("creating a temporary file for {what}"))?;
    let registered = crate::interrupt::remove_on_interrupt(tmp.path());
    io::copy(&mut crate::interrupt::Checked(&mut input), &mut tmp)
        .with_context(|| format!("reading {what}"))?;
    Ok((tmp, registered))
}

fn layer_files(paths: &[String]) -> Result<Sources> {
    paths
        .iter()
        .map(|p| {
            let size = fs::metadata(p).with_context(|| format!("layer {p}"))?.len();
            Ok(Span {
                path: PathBuf::from(p),
                offset: 0,
                size,
                digest: None,
                name: p.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Sources)
}

/// Indexes a plain tar's members by name without reading their data.
/// `None` when the file is not a plain tar.
fn index_tar(path: &Path) -> Result<Option<HashMap<String, (u64, u64)>>> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut head = [0u8; 512];
    let n = f
        .read(&mut head)
        .with_context(|| format!("reading {}", path.display()))?;
    if rootfs::decompress::detect(&head[..n]) != Some(pluginctl_manager::oci::Compression::None)
        || n == 0
    {
        return Ok(None);
    }
    f.seek(SeekFrom::Start(0))?;
    // Only headers are read: member data is seeked over.
    let mut reader = rootfs::tar::Reader::seeking(
        io::BufReader::with_capacity(4 << 10, f),
        rootfs::tar::Limits::default(),
    );
    let mut members = HashMap::new();
    while let Some(h) = reader
        .next_header()
        .with_context(|| format!("reading {}", path.display()))?
    {
        let name = String::from_utf8_lossy(&h.path)
            .trim_start_matches("./")
            .to_owned();
        members.insert(name, (reader.offset(), h.size));
    }
    Ok(Some(members))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SaveManifest {
    layers: Vec<String>,
}

/// A `docker save` tarball: `manifest.json` names the layer members.
/// `label` names the archive in errors (`stdin` for a spool of it).
fn docker_save(path: &Path, label: &str) -> Result<Option<Sources>> {
    let Some(members) = index_tar(path)? else {
        return Ok(None);
    };
    let Some(&(offset, size)) = members.get("manifest.json") else {
        return Ok(None);
    };
    if size > MAX_MANIFEST_BYTES as u64 {
        bail!("{label}: manifest.json is {size} bytes, over the limit");
    }
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    f.take(size).read_to_end(&mut bytes)?;
    let images: Vec<SaveManifest> = serde_json::from_slice(&bytes)
        .with_context(|| format!("{label}: invalid manifest.json"))?;
    let image = match images.as_slice() {
        [one] => one,
        [] => bail!("{label}: manifest.json lists no image"),
        many => bail!(
            "{label}: the archive holds {} images; flatten takes one",
            many.len()
        ),
    };
    let spans = image
        .layers
        .iter()
        .map(|name| {
            let &(offset, size) = members.get(name.trim_start_matches("./")).ok_or_else(|| {
                anyhow!("{label}: layer {name} is listed in manifest.json but not in the archive")
            })?;
            // Docker ≥ 25 names layers by digest (blobs/sha256/<hex>): verify.
            let digest = name
                .strip_prefix("blobs/")
                .and_then(|r| r.split_once('/'))
                .and_then(|(alg, hex)| Digest::parse(&format!("{alg}:{hex}")).ok());
            Ok(Span {
                path: path.to_owned(),
                offset,
                size,
                digest,
                name: format!("{name} of {label}"),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(Sources(spans)))
}

/// An OCI image layout: `index.json`, then the manifest for the tag (or the
/// only one), through nested indexes for this platform.
fn oci_layout(spec: &str) -> Result<Sources> {
    let (dir, tag) = match spec.rsplit_once(':') {
        Some((d, t)) if !t.contains('/') => (d, Some(t)),
        _ => (spec, None),
    };
    let dir = Path::new(dir);
    let blob = |d: &Digest| {
        dir.join("blobs")
            .join(d.algorithm().as_str())
            .join(d.encoded())
    };
    let read_verified = |d: &Digest| -> Result<Vec<u8>> {
        let p = blob(d);
        let meta = fs::metadata(&p).with_context(|| format!("blob {d} of {}", dir.display()))?;
        if meta.len() > MAX_MANIFEST_BYTES as u64 {
            bail!("blob {d} is {} bytes, over the manifest limit", meta.len());
        }
        let bytes = fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
        let got = Digest::of_bytes_with(d.algorithm(), &bytes);
        if &got != d {
            bail!(
                "blob {d} in {} is corrupt (its content hashes to {got})",
                dir.display()
            );
        }
        Ok(bytes)
    };
    let index_path = dir.join("index.json");
    let index_bytes =
        fs::read(&index_path).with_context(|| format!("{} is not an OCI layout", dir.display()))?;
    let index = Index::parse(None, &index_bytes)
        .with_context(|| format!("reading {}", index_path.display()))?;
    let chosen = match tag {
        Some(t) => index
            .manifests
            .iter()
            .find(|d| {
                d.annotations
                    .as_ref()
                    .and_then(|a| a.get("org.opencontainers.image.ref.name"))
                    .is_some_and(|n| n == t)
            })
            .ok_or_else(|| anyhow!("{} has no image tagged {t}", dir.display()))?,
        None => match index.manifests.as_slice() {
            [one] => one,
            _ => bail!(
                "{} holds {} images; name one as oci:DIR:TAG",
                dir.display(),
                index.manifests.len()
            ),
        },
    };
    let mut desc = chosen.clone();
    for _ in 0..4 {
        let bytes = read_verified(&desc.digest)?;
        match Document::parse(Some(&desc.media_type), &bytes)
            .with_context(|| format!("manifest {}", desc.digest))?
        {
            Document::Index(i) => desc = i.select(&Platform::host())?.clone(),
            Document::Manifest(m) => {
                let spans = m
                    .layers
                    .iter()
                    .map(|l| {
                        rootfs::decompress::for_media_type(&l.media_type)?;
                        Ok(Span {
                            path: blob(&l.digest),
                            offset: 0,
                            size: l.size,
                            digest: Some(l.digest.clone()),
                            name: format!("{} of {}", l.digest, dir.display()),
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                return Ok(Sources(spans));
            }
        }
    }
    bail!("{}: indexes nested too deeply", dir.display())
}
