//! The plugin benchmarks: the manager (`create`, `install`) and the
//! runtime (`enable`, `disable`) against dockerd, and the context they and
//! the fleet bench share.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Report, Side, compare, scratch_root};
use crate::localdocker::LocalDocker;
use crate::localreg::LocalRegistry;
use crate::util::{Result, cargo, root};

/// Builds the release `pluginctl` and the `mkimage` example
/// ([`make_context`] needs both); returns the binary's path.
pub(crate) fn build_with_mkimage() -> Result<PathBuf> {
    cargo(&["build", "--release", "--quiet", "-p", "pluginctl"])?;
    cargo(&[
        "build",
        "--release",
        "--quiet",
        "-p",
        "pluginctl-rootfs",
        "--example",
        "mkimage",
    ])?;
    Ok(root().join("target/release/pluginctl"))
}

/// A plugin context whose rootfs is the flattened `mkimage` tree of about
/// `mib` MiB: many small files, some large, text and binary-like data,
/// compressible as real rootfs are.
pub(crate) fn make_context(dir: &Path, mib: u64) -> Result<()> {
    if dir.join("config.json").is_file() {
        return Ok(());
    }
    eprintln!(
        "xtask: generating {} ({mib} MiB plugin context)",
        dir.display()
    );
    let _ = fs::remove_dir_all(dir);
    let bin = root().join("target/release");
    let image = dir.with_extension("image");
    let _ = fs::remove_dir_all(&image);
    crate::util::run(
        Command::new(bin.join("examples/mkimage"))
            .arg(&image)
            .arg(mib.to_string()),
    )?;
    fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    crate::util::run(
        Command::new(bin.join("pluginctl"))
            .args(["flatten", "--format", "dir"])
            .arg(format!("oci:{}:bench", image.join("oci").display()))
            .arg("-o")
            .arg(dir.join("rootfs")),
    )?;
    let _ = fs::remove_dir_all(&image);
    fs::write(
        dir.join("config.json"),
        r#"{"description":"benchmark plugin","entrypoint":["/bin/true"],"interface":{"types":["docker.volumedriver/1.0"],"socket":"b.sock"}}"#,
    )
    .map_err(|e| e.to_string())
}

/// The manager against dockerd, same registry, same plugins: `create` vs
/// `docker plugin create` (target 2x), `install --disable` vs `docker
/// plugin install --disable` (target 1.5x, peak RSS < 96 MiB).
pub(super) fn manager(out_dir: &Path, report: &mut Report) -> Result<Vec<String>> {
    let pluginctl = build_with_mkimage()?;
    let scratch = scratch_root(out_dir);
    let mut missed = Vec::new();
    let reg = LocalRegistry::start(&scratch.join("registry"))?;
    // dockerd's state on the root disk would measure the disk: tmpfs too.
    let docker = LocalDocker::start(&scratch.join("docker"))?;
    let sock = format!("unix://{}", docker.socket.display());
    let dk = |args: &[&str]| -> Vec<OsString> {
        let mut v: Vec<OsString> = vec!["/usr/bin/docker".into(), "-H".into(), sock.clone().into()];
        v.extend(args.iter().map(OsString::from));
        v
    };
    for mib in [200u64, 1024] {
        let ctx = out_dir.join(format!("manager-context-{mib}MiB"));
        make_context(&ctx, mib)?;
        let bytes = mib << 20;
        let ours_name = format!("{}/bench/ours-{mib}:1", reg.host);
        let docker_name = format!("{}/bench/docker-{mib}:1", reg.host);
        let root_c = scratch.join(format!("root-create-{mib}"));

        let mut ours = Side::new(
            "pluginctl create",
            &[&pluginctl, &"--root", &root_c, &"create", &ours_name, &ctx],
        );
        ours.scratch = Some(root_c.clone());
        let peer = Side {
            label: "docker plugin create".to_owned(),
            argv: dk(&["plugin", "create", &docker_name, &ctx.to_string_lossy()]),
            scratch: None,
            before: Some(dk(&["plugin", "rm", "-f", &docker_name])),
        };
        let o = compare(&format!("create, {mib} MiB rootfs"), bytes, &ours, &peer)?;
        missed.extend(o.below(&format!("create {mib} MiB"), "docker", 2.0));
        report.rows.push(o);

        // The plugin both install: ours, pushed once.
        crate::util::run(
            Command::new(&pluginctl)
                .arg("--root")
                .arg(&root_c)
                .args(["-q", "push", &ours_name]),
        )?;
        let root_i = scratch.join(format!("root-install-{mib}"));
        let mut ours = Side::new(
            "pluginctl install --disable",
            &[
                &pluginctl,
                &"--root",
                &root_i,
                &"-q",
                &"install",
                &"--disable",
                &"--grant-all-permissions",
                &ours_name,
            ],
        );
        ours.scratch = Some(root_i.clone());
        let peer = Side {
            label: "docker plugin install --disable".to_owned(),
            argv: dk(&[
                "plugin",
                "install",
                "--disable",
                "--grant-all-permissions",
                &ours_name,
            ]),
            scratch: None,
            before: Some(dk(&["plugin", "rm", "-f", &ours_name])),
        };
        let o = compare(&format!("install, {mib} MiB rootfs"), bytes, &ours, &peer)?;
        missed.extend(o.below(&format!("install {mib} MiB"), "docker", 1.5));
        missed.extend(o.over_rss(&format!("install {mib} MiB"), 96.0));
        report.rows.push(o);
    }
    drop(docker);
    drop(reg);
    report.notes.push(format!(
        "manager: contexts in {}, dockerd 20.10 (vfs) and docker-registry with state in {}",
        out_dir.display(),
        scratch.display()
    ));
    let _ = fs::remove_dir_all(&scratch);
    Ok(missed)
}

/// Enable-to-ready of the static sample volume plugin: `pluginctl enable`
/// (returns once the socket answers) vs `docker plugin enable` of the same
/// context, each disabled again before every run (not timed). Target 2x.
/// Then disable (no target), each enabled before every run.
pub(super) fn runtime(out_dir: &Path, report: &mut Report) -> Result<Vec<String>> {
    cargo(&["build", "--release", "--quiet", "-p", "pluginctl"])?;
    let plugin = crate::demo::build_volume_plugin(true)?;
    let pluginctl = root().join("target/release/pluginctl");
    let scratch = scratch_root(out_dir);
    let mut missed = Vec::new();
    let ctx = scratch.join("ctx");
    for d in ["rootfs/data", "rootfs/run/docker/plugins"] {
        fs::create_dir_all(ctx.join(d)).map_err(|e| e.to_string())?;
    }
    fs::copy(&plugin, ctx.join("rootfs/volume-plugin")).map_err(|e| e.to_string())?;
    fs::write(
        ctx.join("config.json"),
        r#"{"description":"sample","entrypoint":["/volume-plugin"],
            "interface":{"types":["docker.volumedriver/1.0"],"socket":"sample.sock"},
            "propagatedMount":"/data","env":[{"name":"VOLUME_ROOT","value":"/data"}]}"#,
    )
    .map_err(|e| e.to_string())?;
    let docker = LocalDocker::start(&scratch.join("docker"))?;
    let sock = format!("unix://{}", docker.socket.display());
    let dk = |args: &[&str]| -> Vec<OsString> {
        let mut v: Vec<OsString> = vec!["/usr/bin/docker".into(), "-H".into(), sock.clone().into()];
        v.extend(args.iter().map(OsString::from));
        v
    };
    let (root_dir, exec) = (scratch.join("root"), scratch.join("run"));
    let ctl = |args: &[&str]| -> Vec<OsString> {
        let mut v: Vec<OsString> = vec![
            pluginctl.clone().into(),
            "--root".into(),
            root_dir.clone().into(),
            "--exec-root".into(),
            exec.clone().into(),
        ];
        v.extend(args.iter().map(OsString::from));
        v
    };
    let run_argv = |argv: Vec<OsString>| crate::util::run(Command::new(&argv[0]).args(&argv[1..]));
    run_argv(ctl(&[
        "-q",
        "create",
        "bench-sample",
        &ctx.to_string_lossy(),
    ]))?;
    run_argv(dk(&[
        "plugin",
        "create",
        "bench-sample",
        &ctx.to_string_lossy(),
    ]))?;
    let ours = Side {
        label: "pluginctl enable".to_owned(),
        argv: ctl(&["enable", "bench-sample"]),
        scratch: None,
        before: Some(ctl(&["disable", "bench-sample"])),
    };
    let peer = Side {
        label: "docker plugin enable".to_owned(),
        argv: dk(&["plugin", "enable", "bench-sample"]),
        scratch: None,
        before: Some(dk(&["plugin", "disable", "bench-sample"])),
    };
    let o = compare("enable until the socket answers", 1, &ours, &peer)?;
    missed.extend(o.below("enable", "docker plugin enable", 2.0));
    report.rows.push(o);
    let ours = Side {
        label: "pluginctl disable".to_owned(),
        argv: ctl(&["disable", "bench-sample"]),
        scratch: None,
        before: Some(ctl(&["enable", "bench-sample"])),
    };
    let peer = Side {
        label: "docker plugin disable".to_owned(),
        argv: dk(&["plugin", "disable", "bench-sample"]),
        scratch: None,
        before: Some(dk(&["plugin", "enable", "bench-sample"])),
    };
    // No target: both send SIGTERM and the sample plugin exits at once.
    report
        .rows
        .push(compare("disable until nothing runs", 1, &ours, &peer)?);
    let _ = run_argv(ctl(&["enable", "bench-sample"]));
    // The supervisor left running by the last enable: its size.
    let lease = fs::read_dir(exec.join("supervisors"))
        .ok()
        .and_then(|mut d| d.next())
        .and_then(std::result::Result::ok)
        .map(|e| e.path());
    if let Some(pid) = lease.and_then(|p| fs::read_to_string(p).ok()) {
        let status = fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap_or_default();
        if let Some(rss) = status.lines().find(|l| l.starts_with("VmRSS:")) {
            report.notes.push(format!(
                "runtime: the supervisor of an enabled plugin: {}",
                rss.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
            ));
        }
    }
    let _ = run_argv(ctl(&["disable", "bench-sample"]));
    let _ = run_argv(ctl(&["rm", "-f", "bench-sample"]));
    drop(docker);
    report.notes.push(format!(
        "runtime: the static sample volume plugin; pluginctl and dockerd 20.10 (vfs, containerd + runc) state in {}; MB/s is meaningless here, the ratio is the time's",
        scratch.display()
    ));
    let _ = fs::remove_dir_all(&scratch);
    Ok(missed)
}
