//! `cargo xtask bench [NAME…]`: our commands against peer tools.
//!
//! For each pair it builds release binaries, makes its input under
//! `target/bench/` (deterministic bytes, regenerated only when missing), runs
//! one warm-up of each side, then alternates A B A B for `RUNS` rounds, and
//! reports the median wall time, MB/s, peak RSS (from `wait4`) and the
//! throughput ratio ours/peer. Work directories go to `/dev/shm` when it
//! exists, since the root disk is slow and noisy for this. The table is
//! printed and written to `target/bench/report.md`.

// Byte counts and sizes here are far below 2^52: f64 holds them exactly.
#![allow(clippy::cast_precision_loss)]

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

mod fleet;
mod layers;
mod manager;

pub(crate) use manager::{build_with_mkimage, make_context};

use crate::localreg::LocalRegistry;
use crate::tools::{self, Tool};
use crate::util::{Result, cargo, output, root};

/// Measured rounds per side, after one warm-up.
const RUNS: usize = 5;

const BENCH_TOOLS: &[Tool] = &[
    Tool {
        command: "umoci",
        package: "umoci",
    },
    Tool {
        command: "pigz",
        package: "pigz",
    },
    Tool {
        command: "openssl",
        package: "openssl",
    },
    Tool {
        command: "sha256sum",
        package: "coreutils",
    },
    Tool {
        command: "docker-registry",
        package: "docker-registry",
    },
    Tool {
        command: "skopeo",
        package: "skopeo",
    },
    Tool {
        command: "dockerd",
        package: "docker.io",
    },
    Tool {
        command: "podman",
        package: "podman",
    },
];

pub(crate) fn run(args: &[String]) -> Result<()> {
    let names: Vec<&str> = if args.is_empty() {
        vec![
            "content", "rootfs", "registry", "manager", "runtime", "fleet", "layers",
        ]
    } else {
        args.iter().map(String::as_str).collect()
    };
    tools::ensure(BENCH_TOOLS)?;
    let out_dir = root().join("target/bench");
    fs::create_dir_all(&out_dir).map_err(|e| format!("creating {}: {e}", out_dir.display()))?;
    let mut report = Report::new();
    let mut missed = Vec::new();
    for name in names {
        match name {
            "content" => missed.extend(content(&out_dir, &mut report)?),
            "rootfs" => missed.extend(rootfs(&out_dir, &mut report)?),
            "registry" => missed.extend(registry(&out_dir, &mut report)?),
            "manager" => missed.extend(manager::manager(&out_dir, &mut report)?),
            "runtime" => missed.extend(manager::runtime(&out_dir, &mut report)?),
            "fleet" => missed.extend(fleet::run(&out_dir, &mut report.notes)?),
            "layers" => missed.extend(layers::run(&out_dir, &mut report)?),
            other => {
                return Err(format!(
                    "unknown benchmark {other:?} (known: content, rootfs, registry, manager, runtime, fleet, layers)"
                ));
            }
        }
    }
    let md = report.markdown();
    print!("{md}");
    let path = out_dir.join("report.md");
    fs::write(&path, &md).map_err(|e| format!("writing {}: {e}", path.display()))?;
    eprintln!("xtask: report written to {}", path.display());
    if missed.is_empty() {
        Ok(())
    } else {
        Err(format!("targets missed:\n{}", missed.join("\n")))
    }
}

/// One side of a pair: a command line, and what to do before each run.
struct Side {
    label: String,
    argv: Vec<OsString>,
    /// A directory emptied before every run (not timed).
    scratch: Option<PathBuf>,
    /// A command run before every run (not timed; its failure is ignored).
    before: Option<Vec<OsString>>,
}

impl Side {
    fn new(label: &str, argv: &[&dyn AsRef<std::ffi::OsStr>]) -> Side {
        Side {
            label: label.to_owned(),
            argv: argv.iter().map(|a| a.as_ref().to_owned()).collect(),
            scratch: None,
            before: None,
        }
    }
}

#[derive(Clone, Copy)]
struct Sample {
    secs: f64,
    max_rss_kib: u64,
}

struct Outcome {
    name: String,
    bytes: u64,
    ours: (String, Vec<Sample>),
    peer: (String, Vec<Sample>),
}

impl Outcome {
    fn median(samples: &[Sample]) -> f64 {
        let mut s: Vec<f64> = samples.iter().map(|s| s.secs).collect();
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    }

    fn mbps(&self, samples: &[Sample]) -> f64 {
        self.bytes as f64 / Outcome::median(samples) / 1e6
    }

    fn peak_rss_mib(samples: &[Sample]) -> f64 {
        samples.iter().map(|s| s.max_rss_kib).max().unwrap_or(0) as f64 / 1024.0
    }

    /// A missed throughput target, said as `LABEL: 1.23x PEER, target 1.5x`.
    fn below(&self, label: &str, peer: &str, target: f64) -> Option<String> {
        (self.ratio() < target)
            .then(|| format!("{label}: {:.2}x {peer}, target {target}x", self.ratio()))
    }

    /// A missed memory target of ours.
    fn over_rss(&self, label: &str, limit_mib: f64) -> Option<String> {
        let rss = Outcome::peak_rss_mib(&self.ours.1);
        (rss >= limit_mib).then(|| format!("{label}: peak RSS {rss:.1} MiB, target < {limit_mib}"))
    }

    /// Throughput of ours divided by the peer's: above 1 means we are faster.
    fn ratio(&self) -> f64 {
        self.mbps(&self.ours.1) / self.mbps(&self.peer.1)
    }
}

struct Report {
    rows: Vec<Outcome>,
    notes: Vec<String>,
}

impl Report {
    fn new() -> Report {
        Report {
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn markdown(&self) -> String {
        let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
        let date =
            output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])).unwrap_or_default();
        let mut md = format!(
            "# Benchmark report\n\n{} · {cores} cores · median of {RUNS} alternated runs after a warm-up\n\n",
            date.trim()
        );
        md.push_str("| benchmark | ours | median s | MB/s | peak RSS MiB | peer | median s | MB/s | peak RSS MiB | ours/peer |\n");
        md.push_str("|---|---|---:|---:|---:|---|---:|---:|---:|---:|\n");
        for r in &self.rows {
            let _ = writeln!(
                md,
                "| {} | {} | {:.3} | {:.0} | {:.1} | {} | {:.3} | {:.0} | {:.1} | {:.2} |",
                r.name,
                r.ours.0,
                Outcome::median(&r.ours.1),
                r.mbps(&r.ours.1),
                Outcome::peak_rss_mib(&r.ours.1),
                r.peer.0,
                Outcome::median(&r.peer.1),
                r.mbps(&r.peer.1),
                Outcome::peak_rss_mib(&r.peer.1),
                r.ratio(),
            );
        }
        md.push('\n');
        for n in &self.notes {
            let _ = writeln!(md, "- {n}");
        }
        md
    }
}

/// Runs the pair: warm-up, then A B A B.
fn compare(name: &str, bytes: u64, ours: &Side, peer: &Side) -> Result<Outcome> {
    eprintln!("xtask: bench {name}: {} vs {}", ours.label, peer.label);
    measure(ours)?;
    measure(peer)?;
    let mut a = Vec::new();
    let mut b = Vec::new();
    for _ in 0..RUNS {
        a.push(measure(ours)?);
        b.push(measure(peer)?);
    }
    Ok(Outcome {
        name: name.to_owned(),
        bytes,
        ours: (ours.label.clone(), a),
        peer: (peer.label.clone(), b),
    })
}

fn measure(side: &Side) -> Result<Sample> {
    if let Some(cmd) = &side.before {
        let _ = Command::new(&cmd[0])
            .args(&cmd[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    if let Some(dir) = &side.scratch
        && dir.exists()
    {
        fs::remove_dir_all(dir).map_err(|e| format!("emptying {}: {e}", dir.display()))?;
    }
    if let Some(dir) = &side.scratch {
        fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let shown = side
        .argv
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let start = Instant::now();
    let child = Command::new(&side.argv[0])
        .args(&side.argv[1..])
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let (status, max_rss_kib) =
        wait_with_rusage(child.id()).map_err(|e| format!("waiting for {shown}: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    if status != 0 {
        return Err(format!("{shown} failed (wait status {status})"));
    }
    Ok(Sample { secs, max_rss_kib })
}

/// Reaps `pid` with `wait4` and returns its wait status and peak RSS in KiB.
#[allow(unsafe_code)]
pub(crate) fn wait_with_rusage(pid: u32) -> std::io::Result<(i32, u64)> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; zero is a valid value for it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: the pointers are valid for the call; pid is our own child.
        let r = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
        if r == pid {
            return Ok((status, u64::try_from(usage.ru_maxrss).unwrap_or(0)));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// The `mkimage` image of `mib` MiB in `input` (made when missing).
pub(crate) fn mkimage(bin: &Path, input: &Path, mib: u64) -> Result<()> {
    if input.join("gz-layers.txt").is_file() {
        return Ok(());
    }
    eprintln!("xtask: generating {} ({mib} MiB image)", input.display());
    let _ = fs::remove_dir_all(input);
    crate::util::run(
        Command::new(bin.join("examples/mkimage"))
            .arg(input)
            .arg(mib.to_string()),
    )
}

/// A number from the environment (a benchmark's size), else `default`.
pub(crate) fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A fast place for work directories: /dev/shm when there is one.
pub(crate) fn scratch_root(out_dir: &Path) -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.join(format!("pluginctl-bench-{}", std::process::id()))
    } else {
        out_dir.join("work")
    }
}

/// Deterministic input: one MiB of xorshift bytes, repeated.
fn make_input(path: &Path, mib: u64) -> Result<()> {
    if fs::metadata(path).is_ok_and(|m| m.len() == mib << 20) {
        return Ok(());
    }
    eprintln!("xtask: generating {} ({mib} MiB)", path.display());
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let block: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect();
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    for _ in 0..mib {
        f.write_all(&block)
            .map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    }
    drop(f);
    fs::rename(&tmp, path).map_err(|e| format!("renaming {}: {e}", tmp.display()))
}

/// The content store's ingest against one-core SHA-256 by OpenSSL and
/// coreutils. Targets: ≥ 80% of OpenSSL's throughput, peak RSS < 32 MiB.
fn content(out_dir: &Path, report: &mut Report) -> Result<Vec<String>> {
    let mib = env_number("PLUGINCTL_BENCH_MIB", 1024);
    cargo(&[
        "build",
        "--release",
        "--quiet",
        "-p",
        "pluginctl-content",
        "--example",
        "ingest",
    ])?;
    let ingest = root().join("target/release/examples/ingest");
    let input = out_dir.join(format!("content-{mib}MiB.bin"));
    make_input(&input, mib)?;
    let scratch = scratch_root(out_dir);
    let store = scratch.join("store");
    let bytes = mib << 20;
    let gib = if mib == 1024 {
        "1 GiB".to_owned()
    } else {
        format!("{mib} MiB")
    };

    let mut from_file = Side::new("content ingest (file)", &[&ingest, &store, &input]);
    from_file.scratch = Some(store.clone());
    let mut from_memory = Side::new(
        "content ingest (memory)",
        &[&ingest, &store, &"--memory", &input],
    );
    from_memory.scratch = Some(store.clone());
    let openssl = Side::new(
        "openssl dgst -sha256",
        &[&"openssl", &"dgst", &"-sha256", &input],
    );
    let sha256sum = Side::new("sha256sum", &[&"sha256sum", &input]);

    let mut missed = Vec::new();
    for (ours, peer) in [
        (&from_file, &openssl),
        (&from_memory, &openssl),
        (&from_file, &sha256sum),
    ] {
        let o = compare(&format!("ingest {gib}"), bytes, ours, peer)?;
        if peer.label.starts_with("openssl") {
            if o.ratio() < 0.8 {
                missed.push(format!(
                    "{}: {:.0}% of openssl's throughput, target 80%",
                    ours.label,
                    o.ratio() * 100.0
                ));
            }
            let rss = Outcome::peak_rss_mib(&o.ours.1);
            if rss >= 32.0 {
                missed.push(format!(
                    "{}: peak RSS {rss:.1} MiB, target < 32 MiB",
                    ours.label
                ));
            }
        }
        report.rows.push(o);
    }
    let _ = fs::remove_dir_all(&scratch);
    report.notes.push(format!(
        "content: input {} (page-cached after the warm-up); store in {}; every ingest includes fsync and rename. Targets: ≥ 80% of openssl's throughput, peak RSS < 32 MiB.",
        input.display(),
        scratch.display()
    ));
    Ok(missed)
}

/// Layers to trees and back, against umoci, GNU tar, gzip and pigz. Inputs:
/// a deterministic five-layer image (`mkimage`), about 1 GiB and 37k
/// entries, as an OCI layout with gzip layers and as a `docker save` tar.
fn rootfs(out_dir: &Path, report: &mut Report) -> Result<Vec<String>> {
    let mib = env_number("PLUGINCTL_BENCH_MIB", 1024);
    cargo(&["build", "--release", "--quiet", "-p", "pluginctl"])?;
    cargo(&[
        "build",
        "--release",
        "--quiet",
        "-p",
        "pluginctl-rootfs",
        "--example",
        "mkimage",
        "--example",
        "mklayer",
    ])?;
    let bin = root().join("target/release");
    let pluginctl = bin.join("pluginctl");
    let input = out_dir.join(format!("rootfs-{mib}MiB"));
    mkimage(&bin, &input, mib)?;
    let gz_layers: Vec<String> = fs::read_to_string(input.join("gz-layers.txt"))
        .map_err(|e| format!("reading gz-layers.txt: {e}"))?
        .lines()
        .map(str::to_owned)
        .collect();
    let save = input.join("save.tar");
    let oci = format!("oci:{}:bench", input.join("oci").display());
    let umoci_image = format!("{}:bench", input.join("oci").display());
    let bytes = fs::metadata(&save)
        .map_err(|e| format!("{}: {e}", save.display()))?
        .len();
    let scratch = scratch_root(out_dir);
    let work = scratch.join("work");
    let mut missed = Vec::new();
    let rootless: &[&str] = if crate::tools::is_root() {
        &[]
    } else {
        &["--rootless"]
    };

    let out_tar = work.join("out.tar");
    let bundle = work.join("bundle");
    let mut flatten_oci = Side::new(
        "pluginctl flatten (oci, gzip)",
        &[&pluginctl, &"flatten", &oci, &"-o", &out_tar],
    );
    flatten_oci.scratch = Some(work.clone());
    let mut umoci = Side::new("umoci unpack", &[&"umoci", &"unpack"]);
    umoci.argv.extend(rootless.iter().map(OsString::from));
    umoci.argv.extend([
        OsString::from("--image"),
        OsString::from(&umoci_image),
        bundle.clone().into_os_string(),
    ]);
    umoci.scratch = Some(work.clone());
    let floor_script = format!(
        "mkdir -p {w}/floor && for n in 0 1 2 3 4; do tar -xf {i}/layers/layer$n.tar -C {w}/floor; done && for f in {gz}; do pigz -dc \"$f\" > /dev/null; done",
        w = work.display(),
        i = input.display(),
        gz = gz_layers.join(" ")
    );
    let mut floor = Side::new("tar -x + pigz -d (floor)", &[&"sh", &"-c", &floor_script]);
    floor.scratch = Some(work.clone());

    let o = compare("flatten ~1 GiB, 5 gzip layers", bytes, &flatten_oci, &umoci)?;
    missed.extend(o.below("flatten (oci)", "umoci", 3.0));
    missed.extend(o.over_rss("flatten (oci)", 64.0));
    report.rows.push(o);
    report.rows.push(compare(
        "flatten ~1 GiB, 5 gzip layers",
        bytes,
        &flatten_oci,
        &floor,
    )?);

    let mut flatten_save = Side::new(
        "pluginctl flatten (docker save)",
        &[&pluginctl, &"flatten", &save, &"-o", &out_tar],
    );
    flatten_save.scratch = Some(work.clone());
    let cat_script = format!("cat {} > {}", save.display(), out_tar.display());
    let mut cat = Side::new("cat INPUT > OUTPUT", &[&"sh", &"-c", &cat_script]);
    cat.scratch = Some(work.clone());
    let o = compare("flatten ~1 GiB docker save", bytes, &flatten_save, &cat)?;
    let slower = 1.0 / o.ratio();
    if slower > 1.4 {
        missed.push(format!(
            "flatten (docker save): {slower:.2}x the time of cat, target 1.4x"
        ));
    }
    missed.extend(o.over_rss("flatten (docker save)", 32.0));
    report.rows.push(o);

    let rootfs_dir = work.join("rootfs");
    let mut extract = Side::new(
        "pluginctl flatten --format dir",
        &[
            &pluginctl,
            &"flatten",
            &"--format",
            &"dir",
            &oci,
            &"-o",
            &rootfs_dir,
        ],
    );
    extract.scratch = Some(work.clone());
    let o = compare("extract ~1 GiB to a directory", bytes, &extract, &umoci)?;
    missed.extend(o.below("extract", "umoci", 2.0));
    report.rows.push(o);
    let o = compare("extract ~1 GiB to a directory", bytes, &extract, &floor)?;
    if 1.0 / o.ratio() > 1.5 {
        missed.push(format!(
            "extract: {:.2}x the floor, target 1.5x",
            1.0 / o.ratio()
        ));
    }
    report.rows.push(o);

    // Layer creation from the flattened tree (made once, outside the timing).
    let src = scratch.join("src");
    if !src.exists() {
        crate::util::run(
            Command::new(&pluginctl)
                .args(["flatten", "--format", "dir", &oci, "-o"])
                .arg(&src),
        )?;
    }
    let layer_out = work.join("layer.tar.gz");
    let mut mklayer = Side::new(
        "write_layer (gzip, all cores)",
        &[&bin.join("examples/mklayer"), &src, &layer_out, &"gzip"],
    );
    mklayer.scratch = Some(work.clone());
    let tar_gz = format!(
        "mkdir -p {w} && tar -C {s} -cf - . | gzip -6 > {o}",
        w = work.display(),
        s = src.display(),
        o = layer_out.display()
    );
    let mut targz = Side::new("tar -c | gzip", &[&"sh", &"-c", &tar_gz]);
    targz.scratch = Some(work.clone());
    let o = compare("create a layer from ~1 GiB", bytes, &mklayer, &targz)?;
    missed.extend(o.below("layer creation", "tar|gzip", 1.5));
    report.rows.push(o);
    let digest = || -> Result<String> {
        fs::create_dir_all(&work).map_err(|e| e.to_string())?;
        output(
            Command::new(bin.join("examples/mklayer"))
                .arg(&src)
                .arg(&layer_out)
                .arg("gzip"),
        )
    };
    let (a, b) = (digest()?, digest()?);
    if a != b {
        missed.push(format!("layer creation is not deterministic: {a} vs {b}"));
    }
    report.notes.push(format!(
        "rootfs: image {} (5 layers, {} bytes as docker save); work in {}; layer digest twice: {}",
        input.display(),
        bytes,
        scratch.display(),
        a.trim()
    ));
    let _ = fs::remove_dir_all(&scratch);
    Ok(missed)
}

/// The registry client against skopeo through the local distribution
/// registry. Targets: pull ≥ 1.5× skopeo with peak RSS < 64 MiB; push at
/// least as fast as skopeo; a second push (every blob present) under 1 s.
fn registry(out_dir: &Path, report: &mut Report) -> Result<Vec<String>> {
    let mib = env_number("PLUGINCTL_BENCH_MIB", 1024);
    cargo(&[
        "build",
        "--release",
        "--quiet",
        "-p",
        "pluginctl-registry",
        "--example",
        "copy",
        "--example",
        "mkbench",
    ])?;
    let bin = root().join("target/release/examples");
    let copy = bin.join("copy");
    let input = out_dir.join(format!("registry-{mib}MiB"));
    if !input.join("index.json").is_file() {
        eprintln!(
            "xtask: generating {} ({mib} MiB, 8 layers)",
            input.display()
        );
        let _ = fs::remove_dir_all(&input);
        crate::util::run(
            Command::new(bin.join("mkbench"))
                .arg(&input)
                .arg(mib.to_string())
                .arg("8"),
        )?;
    }
    let bytes: u64 = fs::read_dir(input.join("blobs/sha256"))
        .map_err(|e| format!("{}: {e}", input.display()))?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    let layout = format!("oci:{}:bench", input.display());
    let layout_tag = format!("{}:bench", input.display());
    let scratch = scratch_root(out_dir);
    let mut missed = Vec::new();

    // Pull: one registry seeded once; each run writes a fresh directory.
    let pull_reg = LocalRegistry::start(&scratch.join("pull-registry"))?;
    let image = format!("{}/bench/image:v1", pull_reg.host);
    crate::util::run(Command::new(&copy).args(["push", &layout_tag, &image]))?;
    let out = scratch.join("out");
    let mut ours = Side::new(
        "registry client (examples/copy pull)",
        &[&copy, &"pull", &image, &out],
    );
    ours.scratch = Some(out.clone());
    let src = format!("docker://{image}");
    let dst = format!("oci:{}:v1", out.display());
    let mut peer = Side::new(
        "skopeo copy docker:// oci:",
        &[
            &"skopeo",
            &"--insecure-policy",
            &"copy",
            &"-q",
            &"--src-tls-verify=false",
            &src,
            &dst,
        ],
    );
    peer.scratch = Some(out.clone());
    let o = compare("pull ~1 GiB, 8 layers", bytes, &ours, &peer)?;
    missed.extend(o.below("registry pull", "skopeo", 1.5));
    missed.extend(o.over_rss("registry pull", 64.0));
    report.rows.push(o);
    drop(pull_reg);

    // Push to an empty registry: its storage is emptied before every run,
    // so neither side can skip or mount a blob.
    let push_dir = scratch.join("push-registry");
    let push_reg = LocalRegistry::start(&push_dir)?;
    let target = format!("{}/bench/pushed:v1", push_reg.host);
    let storage = push_dir.join("storage");
    let mut ours = Side::new(
        "registry client (examples/copy push)",
        &[&copy, &"push", &layout_tag, &target],
    );
    ours.scratch = Some(storage.clone());
    let dst = format!("docker://{target}");
    let mut peer = Side::new(
        "skopeo copy oci: docker://",
        &[
            &"skopeo",
            &"--insecure-policy",
            &"copy",
            &"-q",
            &"--dest-tls-verify=false",
            &layout,
            &dst,
        ],
    );
    peer.scratch = Some(storage.clone());
    let o = compare("push ~1 GiB, 8 layers, empty registry", bytes, &ours, &peer)?;
    missed.extend(o.below("registry push", "skopeo", 1.0));
    report.rows.push(o);

    // Second push: every blob is there (the warm-up pushes them).
    ours.scratch = None;
    peer.scratch = None;
    let o = compare("push again, every blob present", bytes, &ours, &peer)?;
    let again = Outcome::median(&o.ours.1);
    if again >= 1.0 {
        missed.push(format!("registry second push: {again:.2} s, target < 1 s"));
    }
    report.rows.push(o);
    drop(push_reg);
    report.notes.push(format!(
        "registry: image {} ({bytes} bytes in blobs), registries: docker-registry on 127.0.0.1 with storage in {}",
        input.display(),
        scratch.display()
    ));
    let _ = fs::remove_dir_all(&scratch);
    Ok(missed)
}
