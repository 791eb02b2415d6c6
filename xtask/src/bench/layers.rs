//! `cargo xtask bench layers`: the layer store against containers/storage
//! (podman, overlay driver) and the plugin manager's sharing against
//! dockerd.
//!
//! - Apply the 1 GiB, 5-gzip-layer `mkimage` image into a layer store
//!   (`examples/apply`) vs `podman pull oci:LAYOUT:bench` (graph root in
//!   /dev/shm): target 2x, peak RSS < 64 MiB; and vs `pluginctl flatten
//!   --format dir` of the same image: within 1.25x of its time.
//! - The 200 MiB plugin installed again under another alias vs `docker
//!   plugin install --alias` of it: target 10x; the root grows < 1 MiB.
//! - Ten aliases of it: the root under 1.15x of one copy; Docker's plugin
//!   directory for the same ten beside it.
//! - Ten plugins on one 200 MiB base layer with 1 MiB of their own each:
//!   the root under 1.15x of one plugin's; Docker's beside it.
//! - Install of the 1 GiB, 5-layer plugin against the previous release
//!   (`$PLUGINCTL_BENCH_BASELINE`): faster.

use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::process::Command;

use super::{Report, Side, compare, env_number, scratch_root};
use crate::localdocker::LocalDocker;
use crate::localreg::LocalRegistry;
use crate::util::{Result, cargo, root};

/// Runs a command given as its argv.
fn run_argv(argv: &[OsString]) -> Result<()> {
    crate::util::run(Command::new(&argv[0]).args(&argv[1..]))
}

/// `docker plugin install --disable --grant-all-permissions [--alias A] NAME`
/// against the dockerd at `sock`.
fn docker_install(sock: &str, alias: Option<&str>, name: &str) -> Result<()> {
    let mut c = Command::new("/usr/bin/docker");
    c.args([
        "-H",
        sock,
        "plugin",
        "install",
        "--disable",
        "--grant-all-permissions",
    ]);
    if let Some(a) = alias {
        c.args(["--alias", a]);
    }
    crate::util::run(c.arg(name))
}

/// Bytes a tree takes on disk (`du -s --block-size=1`).
fn disk_bytes(dir: &Path) -> Result<u64> {
    let out = crate::util::output(Command::new("du").args(["-s", "--block-size=1"]).arg(dir))?;
    out.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("du {}: {out}", dir.display()))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

pub(super) fn run(out_dir: &Path, report: &mut Report) -> Result<Vec<String>> {
    let pluginctl = super::build_with_mkimage()?;
    cargo(&[
        "build",
        "--release",
        "--quiet",
        "-p",
        "pluginctl-layers",
        "--example",
        "apply",
        "-p",
        "pluginctl-registry",
        "--example",
        "copy",
    ])?;
    let bin = root().join("target/release");
    let mut missed = apply(out_dir, report, &pluginctl, &bin)?;
    missed.extend(aliases(out_dir, report, &pluginctl)?);
    missed.extend(shared_base(out_dir, report, &pluginctl, &bin)?);
    missed.extend(against_release(out_dir, report, &pluginctl, &bin)?);
    Ok(missed)
}

/// Install of the 1 GiB, 5-layer plugin against the release before the
/// layer store (whose binary `$PLUGINCTL_BENCH_BASELINE` names: it extracts
/// after the last download; this one applies each layer while the others
/// download). Without it, a note says how to get one.
fn against_release(
    out_dir: &Path,
    report: &mut Report,
    pluginctl: &Path,
    bin: &Path,
) -> Result<Vec<String>> {
    let Some(baseline) = std::env::var_os("PLUGINCTL_BENCH_BASELINE") else {
        report.notes.push(
            "install against the previous release: skipped (build it, e.g. `git worktree add /tmp/old 22b0268 && cargo build --release --manifest-path /tmp/old/Cargo.toml -p pluginctl`, and set PLUGINCTL_BENCH_BASELINE to its binary)".to_owned(),
        );
        return Ok(Vec::new());
    };
    let size = env_number("PLUGINCTL_BENCH_MIB", 1024);
    let input = out_dir.join(format!("layers-{size}mib"));
    let bytes = fs::metadata(input.join("save.tar"))
        .map_err(|e| format!("{}: {e}", input.display()))?
        .len();
    let scratch = scratch_root(out_dir);
    let reg = LocalRegistry::start(&scratch.join("registry"))?;
    let name = format!("{}/bench/five-layers:1", reg.host);
    crate::util::run(
        Command::new(bin.join("examples/copy"))
            .arg("push")
            .arg(format!("{}:plugin", input.join("oci").display()))
            .arg(&name),
    )?;
    let side = |label: &str, binary: &dyn AsRef<std::ffi::OsStr>, root: &Path| {
        let mut s = Side::new(
            label,
            &[
                binary,
                &"--root",
                &root,
                &"-q",
                &"install",
                &"--disable",
                &"--grant-all-permissions",
                &name,
            ],
        );
        s.scratch = Some(root.to_owned());
        s
    };
    let ours = side(
        "pluginctl install (layer store)",
        &pluginctl,
        &scratch.join("new"),
    );
    let old = side(
        "previous release install (flattened)",
        &baseline,
        &scratch.join("old"),
    );
    let o = compare(
        &format!("install {size} MiB, 5 gzip layers"),
        bytes,
        &ours,
        &old,
    )?;
    let missed = o
        .below("install against the previous release", "it", 1.0)
        .into_iter()
        .collect();
    report.rows.push(o);
    drop(reg);
    let _ = fs::remove_dir_all(&scratch);
    Ok(missed)
}

/// The 1 GiB image into the store, against podman and flatten.
fn apply(out_dir: &Path, report: &mut Report, pluginctl: &Path, bin: &Path) -> Result<Vec<String>> {
    let size = env_number("PLUGINCTL_BENCH_MIB", 1024);
    // Lower case: podman names the image after the layout's path.
    let input = out_dir.join(format!("layers-{size}mib"));
    super::mkimage(bin, &input, size)?;
    let oci_dir = input.join("oci");
    let bytes = fs::metadata(input.join("save.tar"))
        .map_err(|e| format!("{}: {e}", input.display()))?
        .len();
    let scratch = scratch_root(out_dir);
    let mut missed = Vec::new();
    let store = scratch.join("layer-store");
    let mut ours = Side::new(
        "layer store apply (examples/apply)",
        &[&bin.join("examples/apply"), &store, &oci_dir, &"bench"],
    );
    ours.scratch = Some(store.clone());
    // containers/storage on tmpfs: a graph root and a run root of its own,
    // the overlay driver, no events journal.
    let graph = scratch.join("podman");
    let image = format!("oci:{}:bench", oci_dir.display());
    let mut podman = Side::new(
        "podman pull oci: (containers/storage, overlay)",
        &[
            &"podman",
            &"--root",
            &graph.join("root"),
            &"--runroot",
            &graph.join("run"),
            &"--storage-driver",
            &"overlay",
            &"--events-backend",
            &"none",
            &"pull",
            &"-q",
            &image,
        ],
    );
    podman.scratch = Some(graph.clone());
    let o = compare("apply ~1 GiB, 5 gzip layers", bytes, &ours, &podman)?;
    missed.extend(o.below("layer store apply", "podman pull", 2.0));
    missed.extend(o.over_rss("layer store apply", 64.0));
    report.rows.push(o);

    let flat = scratch.join("flat");
    let oci = format!("oci:{}:bench", oci_dir.display());
    let mut flatten = Side::new(
        "pluginctl flatten --format dir",
        &[
            &pluginctl,
            &"flatten",
            &"--format",
            &"dir",
            &oci,
            &"-o",
            &flat.join("rootfs"),
        ],
    );
    flatten.scratch = Some(flat.clone());
    let o = compare("apply ~1 GiB, 5 gzip layers", bytes, &ours, &flatten)?;
    let slower = 1.0 / o.ratio();
    if slower > 1.25 {
        missed.push(format!(
            "layer store apply: {slower:.2}x the time of flatten --format dir, target 1.25x"
        ));
    }
    report.rows.push(o);
    let _ = fs::remove_dir_all(&scratch);
    Ok(missed)
}

/// The 200 MiB plugin again under other aliases, against dockerd.
fn aliases(out_dir: &Path, report: &mut Report, pluginctl: &Path) -> Result<Vec<String>> {
    let size = 200u64;
    let ctx = out_dir.join(format!("manager-context-{size}MiB"));
    super::make_context(&ctx, size)?;
    let scratch = scratch_root(out_dir);
    let mut missed = Vec::new();
    let reg = LocalRegistry::start(&scratch.join("registry"))?;
    let docker_dir = scratch.join("docker");
    let docker = LocalDocker::start(&docker_dir)?;
    let sock = format!("unix://{}", docker.socket.display());
    let dk = |args: &[&str]| -> Vec<OsString> {
        let mut v: Vec<OsString> = vec!["/usr/bin/docker".into(), "-H".into(), sock.clone().into()];
        v.extend(args.iter().map(OsString::from));
        v
    };
    let name = format!("{}/bench/alias-{size}:1", reg.host);
    let build = scratch.join("build");
    crate::util::run(
        Command::new(pluginctl)
            .arg("--root")
            .arg(&build)
            .args(["-q", "create", &name])
            .arg(&ctx),
    )?;
    crate::util::run(
        Command::new(pluginctl)
            .arg("--root")
            .arg(&build)
            .args(["-q", "push", &name]),
    )?;
    let root = scratch.join("root");
    let install = |alias: &str| -> Vec<OsString> {
        let mut v: Vec<OsString> = vec![
            pluginctl.into(),
            "--root".into(),
            root.clone().into(),
            "-q".into(),
            "install".into(),
            "--disable".into(),
            "--grant-all-permissions".into(),
            "--alias".into(),
            alias.into(),
        ];
        v.push(name.clone().into());
        v
    };
    run_argv(&install("first"))?;
    docker_install(&sock, Some("first"), &name)?;
    let one_copy = disk_bytes(&root)?;

    let ours = Side {
        label: "pluginctl install --alias (layers present)".to_owned(),
        argv: install("again"),
        scratch: None,
        before: Some(vec![
            pluginctl.into(),
            "--root".into(),
            root.clone().into(),
            "rm".into(),
            "-f".into(),
            "again".into(),
        ]),
    };
    let peer = Side {
        label: "docker plugin install --alias".to_owned(),
        argv: dk(&[
            "plugin",
            "install",
            "--disable",
            "--grant-all-permissions",
            "--alias",
            "again",
            &name,
        ]),
        scratch: None,
        before: Some(dk(&["plugin", "rm", "-f", "again"])),
    };
    let o = compare(
        &format!("install again under an alias, {size} MiB plugin"),
        size << 20,
        &ours,
        &peer,
    )?;
    missed.extend(o.below("install under another alias", "docker", 10.0));
    report.rows.push(o);
    crate::util::run(
        Command::new(pluginctl)
            .arg("--root")
            .arg(&root)
            .args(["rm", "-f", "again"]),
    )?;

    // Growth of one more alias, then ten in all.
    let before = disk_bytes(&root)?;
    run_argv(&install("a1"))?;
    let grown = disk_bytes(&root)?.saturating_sub(before);
    if grown >= 1 << 20 {
        missed.push(format!(
            "install under another alias: the root grew {:.2} MiB, target < 1 MiB",
            mib(grown)
        ));
    }
    for i in 2..10 {
        let a = format!("a{i}");
        run_argv(&install(&a))?;
        docker_install(&sock, Some(&a), &name)?;
    }
    docker_install(&sock, Some("a1"), &name)?;
    let ten = disk_bytes(&root)?;
    let docker_ten = disk_bytes(&docker_dir.join("data/plugins"))?;
    let ratio = ten as f64 / one_copy as f64;
    if ratio >= 1.15 {
        missed.push(format!(
            "ten aliases: the root is {ratio:.2}x one copy, target < 1.15x"
        ));
    }
    report.notes.push(format!(
        "One {size} MiB plugin under ten aliases: pluginctl's root {:.1} MiB, {ratio:.3}x one copy ({:.1} MiB: its layer and blobs); Docker's plugin directory {:.1} MiB. One more alias grew the root by {:.1} KiB.",
        mib(ten),
        mib(one_copy),
        mib(docker_ten),
        grown as f64 / 1024.0
    ));
    drop(docker);
    drop(reg);
    let _ = fs::remove_dir_all(&scratch);
    Ok(missed)
}

/// `sha256:<hex>` of a file (`sha256sum`).
fn sha256_file(path: &Path) -> Result<String> {
    let out = crate::util::output(Command::new("sha256sum").arg(path))?;
    let hex = out.split_whitespace().next().unwrap_or_default();
    Ok(format!("sha256:{hex}"))
}

/// Writes `bytes` as a blob of the OCI layout `dir`; returns its digest.
fn put_blob(dir: &Path, path_or_bytes: std::result::Result<&Path, &[u8]>) -> Result<(String, u64)> {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(|e| e.to_string())?;
    let tmp = blobs.join("incoming");
    match path_or_bytes {
        Ok(p) => fs::copy(p, &tmp).map(drop),
        Err(b) => fs::write(&tmp, b),
    }
    .map_err(|e| format!("{}: {e}", tmp.display()))?;
    let digest = sha256_file(&tmp)?;
    let size = fs::metadata(&tmp).map_err(|e| e.to_string())?.len();
    fs::rename(&tmp, blobs.join(&digest["sha256:".len()..])).map_err(|e| e.to_string())?;
    Ok((digest, size))
}

/// Ten plugins on one base: the 200 MiB plugin's gzip layer, and a plain
/// tar of 1 MiB of each one's own (GNU tar), pushed from OCI layouts by
/// `examples/copy`; all ten installed, by us and by dockerd.
fn shared_base(
    out_dir: &Path,
    report: &mut Report,
    pluginctl: &Path,
    bin: &Path,
) -> Result<Vec<String>> {
    let size = 200u64;
    let ctx = out_dir.join(format!("manager-context-{size}MiB"));
    super::make_context(&ctx, size)?;
    let scratch = scratch_root(out_dir);
    let reg = LocalRegistry::start(&scratch.join("registry"))?;
    let docker_dir = scratch.join("docker");
    let docker = LocalDocker::start(&docker_dir)?;
    let sock = format!("unix://{}", docker.socket.display());
    // The base: the layer `create` makes of the context, and its diff_id.
    let build = scratch.join("build");
    crate::util::run(
        Command::new(pluginctl)
            .arg("--root")
            .arg(&build)
            .args(["-q", "create", "base:1"])
            .arg(&ctx),
    )?;
    let ids = crate::util::output(Command::new(pluginctl).arg("--root").arg(&build).args([
        "inspect",
        "--format",
        "{{json .Config.Rootfs.DiffIds}}",
        "base:1",
    ]))?;
    // `["sha256:…"]`: one layer.
    let base_diff_id = ids
        .trim()
        .trim_matches(|c| c == '[' || c == ']' || c == '"')
        .to_owned();
    if !base_diff_id.starts_with("sha256:") || base_diff_id.contains(',') {
        return Err(format!("the base plugin's diff_ids: {ids}"));
    }
    let base_blob = fs::read_dir(build.join("content/blobs/sha256"))
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .max_by_key(|p| fs::metadata(p).map_or(0, |m| m.len()))
        .ok_or("the base plugin has no blobs")?;
    let mut names = Vec::new();
    for i in 0..10 {
        let layout = scratch.join(format!("layout{i}"));
        let own = scratch.join(format!("own{i}"));
        fs::create_dir_all(&own).map_err(|e| e.to_string())?;
        crate::util::run(
            Command::new("head")
                .args(["-c", "1048576", "/dev/urandom"])
                .stdout(
                    fs::File::create(own.join(format!("data-{i}"))).map_err(|e| e.to_string())?,
                ),
        )?;
        let tar = scratch.join(format!("own{i}.tar"));
        crate::util::run(
            Command::new("tar")
                .arg("-cf")
                .arg(&tar)
                .arg("-C")
                .arg(&own)
                .arg("."),
        )?;
        let own_diff_id = sha256_file(&tar)?;
        let (base_digest, base_size) = put_blob(&layout, Ok(&base_blob))?;
        let (own_digest, own_size) = put_blob(&layout, Ok(&tar))?;
        let config = format!(
            r#"{{"description":"shared base {i}","entrypoint":["/bin/true"],"interface":{{"types":["docker.volumedriver/1.0"],"socket":"b.sock"}},"rootfs":{{"type":"layers","diff_ids":["{base_diff_id}","{own_diff_id}"]}}}}"#
        );
        let (config_digest, config_size) = put_blob(&layout, Err(config.as_bytes()))?;
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.plugin.v1+json","digest":"{config_digest}","size":{config_size}}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{base_digest}","size":{base_size}}},{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar","digest":"{own_digest}","size":{own_size}}}]}}"#
        );
        let (m_digest, m_size) = put_blob(&layout, Err(manifest.as_bytes()))?;
        fs::write(
            layout.join("index.json"),
            format!(
                r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{m_digest}","size":{m_size},"annotations":{{"org.opencontainers.image.ref.name":"p"}}}}]}}"#
            ),
        )
        .map_err(|e| e.to_string())?;
        fs::write(
            layout.join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .map_err(|e| e.to_string())?;
        let name = format!("{}/bench/shared-{i}:1", reg.host);
        crate::util::run(
            Command::new(bin.join("examples/copy"))
                .arg("push")
                .arg(format!("{}:p", layout.display()))
                .arg(&name),
        )?;
        names.push(name);
    }
    let root = scratch.join("root");
    let mut one = 0;
    for (i, name) in names.iter().enumerate() {
        crate::util::run(Command::new(pluginctl).arg("--root").arg(&root).args([
            "-q",
            "install",
            "--disable",
            "--grant-all-permissions",
            name,
        ]))?;
        docker_install(&sock, None, name)?;
        if i == 0 {
            one = disk_bytes(&root)?;
        }
    }
    let ten = disk_bytes(&root)?;
    let docker_ten = disk_bytes(&docker_dir.join("data/plugins"))?;
    let ratio = ten as f64 / one as f64;
    let mut missed = Vec::new();
    if ratio >= 1.15 {
        missed.push(format!(
            "ten plugins on one base: the root is {ratio:.2}x one plugin's, target < 1.15x"
        ));
    }
    report.notes.push(format!(
        "Ten plugins on one {size} MiB base layer with 1 MiB of their own each: pluginctl's root {:.1} MiB, {ratio:.3}x one plugin's ({:.1} MiB: base and own layers and blobs); Docker's plugin directory {:.1} MiB.",
        mib(ten),
        mib(one),
        mib(docker_ten)
    ));
    drop(docker);
    drop(reg);
    let _ = fs::remove_dir_all(&scratch);
    Ok(missed)
}
