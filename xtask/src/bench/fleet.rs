//! `cargo xtask bench fleet`: many hosts installing one plugin through a
//! pull-through cache.
//!
//! An upstream `docker-registry` and a second one in proxy mode on
//! 127.0.0.1, hosts configured by a `hosts.toml` pointing at the mirror.
//! N concurrent `pluginctl install --disable` processes (default 32), each
//! with its own root (a host), of one plugin (default ~200 MiB), against
//! the floor: the same blobs fetched by N concurrent `curl` through the same
//! mirror. The cache is warm for both (a warm-up round of each), rounds
//! alternate, medians are reported with the peak RSS of one install
//! process. Every root's rootfs is checked against the context's after the
//! last round. Target: within 1.3x of the curl floor.

// Byte counts here are far below 2^52: f64 holds them exactly.
#![allow(clippy::cast_precision_loss)]

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::{build_with_mkimage, env_number, make_context, scratch_root, wait_with_rusage};
use crate::localreg::LocalRegistry;
use crate::util::{Result, run as run_cmd};

/// Alternated rounds per side, after one warm-up round of each.
const ROUNDS: usize = 3;

pub(crate) fn run(out_dir: &Path, notes: &mut Vec<String>) -> Result<Vec<String>> {
    let hosts = env_number("PLUGINCTL_BENCH_HOSTS", 32);
    let mib = env_number("PLUGINCTL_BENCH_FLEET_MIB", 200);
    let pluginctl = build_with_mkimage()?;
    let ctx = out_dir.join(format!("manager-context-{mib}MiB"));
    make_context(&ctx, mib)?;
    let scratch = scratch_root(out_dir).join("fleet");
    let _ = fs::remove_dir_all(&scratch);
    let upstream = LocalRegistry::start(&scratch.join("upstream"))?;
    let mirror = LocalRegistry::start_with(
        &scratch.join("mirror"),
        Some(&format!("http://{}", upstream.host)),
    )?;
    let hosts_dir = scratch.join("certs.d");
    let d = hosts_dir.join(&upstream.host);
    fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    fs::write(
        d.join("hosts.toml"),
        format!(
            "server = \"http://{}\"\n[host.\"http://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            upstream.host, mirror.host
        ),
    )
    .map_err(|e| e.to_string())?;
    let name = format!("{}/bench/fleet:1", upstream.host);
    let builder = scratch.join("builder");
    run_cmd(
        Command::new(&pluginctl)
            .arg("--root")
            .arg(&builder)
            .args(["-q", "create", &name])
            .arg(&ctx),
    )?;
    run_cmd(
        Command::new(&pluginctl)
            .arg("--root")
            .arg(&builder)
            .arg("--hosts-dir")
            .arg(&hosts_dir)
            .args(["-q", "push", &name]),
    )?;
    let urls = blob_urls(&mirror.host, "bench/fleet", "1")?;
    let roots: Vec<PathBuf> = (0..hosts)
        .map(|i| scratch.join(format!("host{i}")))
        .collect();
    let install = |r: &PathBuf| -> Command {
        let mut c = Command::new(&pluginctl);
        c.arg("--root")
            .arg(r)
            .arg("--hosts-dir")
            .arg(&hosts_dir)
            .args([
                "-q",
                "install",
                "--disable",
                "--grant-all-permissions",
                &name,
            ]);
        c
    };
    let curl = |_: &PathBuf| -> Command {
        let mut c = Command::new("curl");
        c.args(["-sSf", "-H", MANIFEST_ACCEPT]);
        for u in &urls {
            c.args(["-o", "/dev/null", u]);
        }
        c
    };
    // The same transfers, and the layers unpacked by the standard tools
    // (no verification): what any installer must at least do on this
    // machine's cores.
    let untar = |r: &PathBuf| -> Command {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(
                "root=$1; shift; mkdir -p \"$root\" && \
                 curl -sSf -H \"$ACCEPT\" -o /dev/null \"$1\" && curl -sSf -o /dev/null \"$2\" && shift 2 && \
                 for u in \"$@\"; do curl -sSf \"$u\" | tar -xzf - -C \"$root\" || exit 1; done",
            )
            .arg("sh")
            .arg(r)
            .args(&urls)
            .env("ACCEPT", MANIFEST_ACCEPT);
        c
    };
    eprintln!(
        "xtask: bench fleet: {hosts} x pluginctl install vs {hosts} x curl, {mib} MiB plugin"
    );
    // Warm-up: fills the mirror's cache from upstream.
    round(&roots, &install)?;
    round(&roots, &curl)?;
    let mut ours = Vec::new();
    let mut floor = Vec::new();
    let mut unpacked = Vec::new();
    // Ours last in each round, so its roots are there to be checked.
    for i in 0..ROUNDS {
        floor.push(round(&roots, &curl)?);
        unpacked.push(round(&roots, &untar)?);
        ours.push(round(&roots, &install)?);
        eprintln!(
            "xtask: fleet round {}: curl {:.2} s, curl | tar -xz {:.2} s, pluginctl {:.2} s",
            i + 1,
            floor[i].0,
            unpacked[i].0,
            ours[i].0
        );
    }
    let want = tree_digest(&ctx.join("rootfs"))?;
    for (i, r) in roots.iter().enumerate() {
        let got = tree_digest(&rootfs_of(r)?)?;
        if got != want {
            return Err(format!("host {i}: its rootfs differs from the context's"));
        }
    }
    let (ours_s, rss) = summary(&ours);
    let (floor_s, curl_rss) = summary(&floor);
    let (untar_s, _) = summary(&unpacked);
    let ratio = ours_s / floor_s;
    let bytes: u64 = blob_bytes(&builder)?;
    let mut line = String::new();
    let _ = write!(
        line,
        "fleet: {hosts} concurrent `pluginctl install` through a docker-registry pull-through cache, {mib} MiB plugin ({:.0} MiB of blobs): median {ours_s:.2} s wall, peak RSS {rss:.1} MiB per process; the floor, {hosts} concurrent curl of the same blobs through the same mirror: {floor_s:.2} s ({curl_rss:.1} MiB); ours/floor {ratio:.2}x (target 1.3x); the same curl piped to `tar -xz` per host (unverified): {untar_s:.2} s, ours/that {:.2}x; every rootfs verified against the context",
        bytes as f64 / 1_048_576.0,
        ours_s / untar_s
    );
    eprintln!("xtask: {line}");
    notes.push(line);
    drop(mirror);
    drop(upstream);
    let _ = fs::remove_dir_all(&scratch);
    Ok(if ratio > 1.3 {
        vec![format!("fleet: {ratio:.2}x the curl floor, target 1.3x")]
    } else {
        Vec::new()
    })
}

const MANIFEST_ACCEPT: &str = "Accept: application/vnd.docker.distribution.manifest.v2+json";

/// One round: every host at once; the wall time until the last is done,
/// and the largest peak RSS (KiB) of one of them.
fn round(roots: &[PathBuf], make: &dyn Fn(&PathBuf) -> Command) -> Result<(f64, u64)> {
    for r in roots {
        let _ = fs::remove_dir_all(r);
    }
    let start = Instant::now();
    let mut pids = Vec::new();
    for r in roots {
        let child = make(r)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting a fleet process: {e}"))?;
        pids.push(child.id());
    }
    let mut peak = 0;
    for pid in pids {
        let (status, rss) = wait_with_rusage(pid).map_err(|e| e.to_string())?;
        if status != 0 {
            return Err(format!("a fleet process failed (wait status {status})"));
        }
        peak = peak.max(rss);
    }
    Ok((start.elapsed().as_secs_f64(), peak))
}

/// Median seconds and largest peak RSS (MiB) of rounds.
fn summary(rounds: &[(f64, u64)]) -> (f64, f64) {
    let mut s: Vec<f64> = rounds.iter().map(|r| r.0).collect();
    s.sort_by(f64::total_cmp);
    let rss = rounds.iter().map(|r| r.1).max().unwrap_or(0);
    (s[s.len() / 2], rss as f64 / 1024.0)
}

/// The manifest's URL and every blob's, at the mirror.
fn blob_urls(mirror: &str, repo: &str, tag: &str) -> Result<Vec<String>> {
    let manifest = format!("http://{mirror}/v2/{repo}/manifests/{tag}");
    let text =
        crate::util::output(Command::new("curl").args(["-sSf", "-H", MANIFEST_ACCEPT, &manifest]))?;
    let mut urls = vec![manifest];
    for part in text.split("\"digest\"").skip(1) {
        let digest: String = part
            .trim_start_matches([':', ' ', '"'])
            .chars()
            .take_while(|c| *c != '"')
            .collect();
        urls.push(format!("http://{mirror}/v2/{repo}/blobs/{digest}"));
    }
    Ok(urls)
}

/// Bytes of the builder's blobs (what each host fetches).
fn blob_bytes(root: &Path) -> Result<u64> {
    let dir = root.join("content/blobs/sha256");
    let mut n = 0;
    for e in fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        n += e
            .map_err(|e| e.to_string())?
            .metadata()
            .map_err(|e| e.to_string())?
            .len();
    }
    Ok(n)
}

fn rootfs_of(root: &Path) -> Result<PathBuf> {
    let dir = root.join("plugins");
    let mut it = fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let first = it
        .next()
        .ok_or_else(|| format!("{}: no plugin", dir.display()))?
        .map_err(|e| e.to_string())?;
    Ok(first.path().join("rootfs"))
}

/// sha256 over every entry's name, mode, type and link target, and every
/// file's content: equal trees give equal digests.
fn tree_digest(dir: &Path) -> Result<String> {
    let script = "cd \"$1\" && { find . -printf '%p %m %y %l\\n' | LC_ALL=C sort; \
                  find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum; } | sha256sum";
    let out = crate::util::output(Command::new("sh").arg("-c").arg(script).arg("sh").arg(dir))?;
    Ok(out.split_whitespace().next().unwrap_or_default().to_owned())
}
