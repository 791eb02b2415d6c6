//! `cargo xtask demo`: the plugin lifecycle as a user would type it,
//! against a local registry this starts itself, in a temporary root.

use std::path::Path;
use std::process::Command;

use crate::localreg::LocalRegistry;
use crate::tools::{self, Tool};
use crate::util::{Result, cargo, root};

const DEMO_TOOLS: &[Tool] = &[Tool {
    command: "docker-registry",
    package: "docker-registry",
}];

/// The sample plugin's config: a volume driver on `sample.sock` whose
/// volumes live in its propagated mount.
const CONFIG: &str = r#"{
  "description": "sample volume plugin (examples/volume-plugin)",
  "documentation": "https://docs.docker.com/engine/extend/plugins_volume/",
  "entrypoint": ["/volume-plugin"],
  "workdir": "/",
  "interface": {"types": ["docker.volumedriver/1.0"], "socket": "sample.sock"},
  "network": {"type": "host"},
  "propagatedMount": "/data",
  "linux": {"capabilities": ["CAP_SYS_ADMIN"]},
  "mounts": [{"name": "state", "description": "where the driver keeps its state", "source": "/var/lib/sample-volumes",
              "destination": "/state", "type": "bind", "options": ["rbind", "rw"], "settable": ["source"]}],
  "env": [{"name": "DEBUG", "description": "debug level", "settable": ["value"], "value": "0"},
          {"name": "VOLUME_ROOT", "description": "where volumes live", "value": "/data"}]
}
"#;

pub(crate) fn run() -> Result<()> {
    tools::ensure(DEMO_TOOLS)?;
    cargo(&["build", "--release", "--quiet", "-p", "pluginctl"])?;
    let plugin_bin = build_volume_plugin(true)?;
    let pluginctl = root().join("target/release/pluginctl");
    // Short: the plugin's socket path (`<work>/run/<64-hex id>/socket/…`)
    // must fit in a unix socket address for curl to reach it.
    let work = Path::new("/tmp").join(format!("pcd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let result = demo(&work, &pluginctl, &plugin_bin);
    if result.is_err() {
        // Whatever a failed demo left running goes the way a user would
        // make it go: `rm -f` disables first.
        let ctl = || {
            let mut c = Command::new(&pluginctl);
            c.env("PLUGINCTL_ROOT", work.join("root"))
                .arg("--exec-root")
                .arg(work.join("run"));
            c
        };
        if let Ok(out) = ctl().args(["-q", "ls", "--no-trunc"]).output() {
            let ids = String::from_utf8_lossy(&out.stdout).into_owned();
            for id in ids.split_whitespace() {
                let _ = ctl().args(["rm", "-f", id]).status();
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// Builds `examples/volume-plugin` static (`+crt-static` on the gnu
/// target), so that the binary is its whole rootfs. Returns its path.
pub(crate) fn build_volume_plugin(release: bool) -> Result<std::path::PathBuf> {
    build_static(&["volume-plugin"], release)?;
    let profile = if release { "release" } else { "debug" };
    Ok(root().join(format!(
        "target/x86_64-unknown-linux-gnu/{profile}/volume-plugin"
    )))
}

/// Builds the sample plugins, the volume driver and `examples/driver-plugins`
/// (network, IPAM, authorization, log drivers), static, in one cargo run.
pub(crate) fn build_sample_plugins() -> Result<()> {
    build_static(&["volume-plugin", "driver-plugins"], false)
}

fn build_static(packages: &[&str], release: bool) -> Result<()> {
    let mut args = vec!["build", "--quiet", "--target", "x86_64-unknown-linux-gnu"];
    for p in packages {
        args.extend(["-p", p]);
    }
    if release {
        args.push("--release");
    }
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .current_dir(root())
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .args(&args)
        .status()
        .map_err(|e| format!("running cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building {} failed", packages.join(", ")));
    }
    Ok(())
}

fn demo(work: &Path, pluginctl: &Path, plugin_bin: &Path) -> Result<()> {
    let ctx = work.join("context");
    for d in ["rootfs/run/docker/plugins", "rootfs/data", "rootfs/state"] {
        std::fs::create_dir_all(ctx.join(d)).map_err(|e| format!("{}: {e}", ctx.display()))?;
    }
    std::fs::copy(plugin_bin, ctx.join("rootfs/volume-plugin"))
        .map_err(|e| format!("copying {}: {e}", plugin_bin.display()))?;
    std::fs::write(ctx.join("config.json"), CONFIG).map_err(|e| e.to_string())?;
    let reg = LocalRegistry::start(&work.join("registry"))?;
    let root = work.join("root");
    let name = format!("{}/demo/sample-volume:1.0", reg.host);
    println!(
        "# A throwaway registry listens on {}; pluginctl keeps its state in",
        reg.host
    );
    println!("# PLUGINCTL_ROOT={}", root.display());
    let ctx_s = ctx.display().to_string();
    let steps: Vec<Vec<&str>> = vec![
        vec!["create", &name, &ctx_s],
        vec!["ls"],
        vec!["push", &name],
        vec!["rm", &name],
        vec!["privileges", &name],
        vec![
            "install",
            "--grant-all-permissions",
            "--disable",
            &name,
            "DEBUG=1",
        ],
        vec!["ls", "--filter", "capability=volumedriver"],
        vec![
            "inspect",
            "--format",
            "{{.Name}} enabled={{.Enabled}} env={{json .Settings.Env}}",
            &name,
        ],
        vec!["set", &name, "DEBUG=2"],
        vec![
            "set",
            "--grant-all-permissions",
            &name,
            "state.source=/srv/sample",
        ],
        vec!["inspect", "--format", "{{json .Settings.Mounts}}", &name],
    ];
    let running: Vec<Vec<&str>> = vec![
        vec!["set", "--grant-all-permissions", &name, "state.source=/tmp"],
        vec!["enable", "--publish", &name],
        vec!["ls"],
    ];
    // The same plugin again under another name (one driver, two
    // configurations): its layer is shared, not extracted again.
    let after: Vec<Vec<&str>> = vec![
        vec!["logs", "--tail", "3", &name],
        vec!["restore"],
        vec!["disable", &name],
        vec![
            "install",
            "--grant-all-permissions",
            "--disable",
            "--alias",
            "sample-debug",
            &name,
            "DEBUG=1",
        ],
        vec!["layers", "ls"],
        vec!["df"],
        vec!["check"],
        vec!["rm", "sample-debug"],
        vec!["rm", &name],
        vec!["gc"],
    ];
    let exec_root = work.join("run");
    // Where engines would look for it: a directory of the demo's, not the
    // host's /run/docker/plugins.
    let publish_dir = work.join("published");
    // Likewise podman's drop-in: the demo's, not the host's.
    let podman_dir = work.join("containers.conf.d");
    let run = |args: &[&str]| -> Result<()> {
        println!("\n$ pluginctl {}", shell_words(args));
        let status = Command::new(pluginctl)
            .env("PLUGINCTL_ROOT", &root)
            .arg("--exec-root")
            .arg(&exec_root)
            .arg("--publish-dir")
            .arg(&publish_dir)
            .arg("--podman-conf-dir")
            .arg(&podman_dir)
            .args(args)
            .status()
            .map_err(|e| format!("running pluginctl: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("pluginctl {} failed ({status})", args.join(" ")))
        }
    };
    for args in &steps {
        run(args)?;
    }
    let is_root =
        std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if is_root {
        for args in &running {
            run(args)?;
        }
        // Talk to it: the VolumeDriver protocol on its socket.
        let id = String::from_utf8_lossy(
            &Command::new(pluginctl)
                .env("PLUGINCTL_ROOT", &root)
                .args(["inspect", "--format", "{{.Id}}", &name])
                .output()
                .map_err(|e| e.to_string())?
                .stdout,
        )
        .trim()
        .to_owned();
        let sock = exec_root.join(&id).join("socket/sample.sock");
        // The same list through the published socket: an engine's view,
        // paths on the host.
        let published = publish_dir.join(format!("{name}.sock"));
        for (sock, path, body) in [
            (&sock, "/Plugin.Activate", "{}"),
            (&sock, "/VolumeDriver.Create", r#"{"Name":"demo-volume"}"#),
            (&sock, "/VolumeDriver.List", "{}"),
            (&published, "/VolumeDriver.List", "{}"),
        ] {
            println!(
                "\n$ curl --unix-socket {} -d '{body}' http://plugin{path}",
                sock.display()
            );
            let out = Command::new("curl")
                .args(["-sS", "--unix-socket"])
                .arg(sock)
                .args(["-d", body, &format!("http://plugin{path}")])
                .output()
                .map_err(|e| format!("running curl: {e}"))?;
            println!("{}", String::from_utf8_lossy(&out.stdout));
        }
    } else {
        println!("\n# (enable needs root for runc and its mounts; skipped)");
    }
    for args in &after {
        if !is_root && ["logs", "restore", "disable"].contains(&args[0]) {
            continue;
        }
        run(args)?;
    }
    println!("\n# Done.");
    drop(reg);
    Ok(())
}

fn shell_words(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            if a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=@".contains(c))
            {
                (*a).to_owned()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
