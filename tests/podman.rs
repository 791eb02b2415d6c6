//! Podman (Debian's 4.3.1, the engine most of our users run) uses a volume
//! plugin that pluginctl runs, with nothing configured by hand: `enable
//! --publish` writes the `containers.conf` drop-in podman reads. Volumes
//! are created, listed, inspected, mounted into a container that writes a
//! file read back on the host, and removed; while a container has one
//! mounted, the plugin is in use and `disable` refuses it, even after its
//! supervisor was restarted.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

const PODMAN: &str = "/usr/bin/podman";
const DROP_INS: &str = "/etc/containers/containers.conf.d";

fn podman(args: &[&str]) -> Output {
    Command::new(PODMAN).args(args).output().unwrap()
}

/// The host's hard limits here are below podman's default ulimits for a
/// rootful container (1048576 open files): ask for ones the host allows.
/// That is the host, not the plugin; nothing is written to a config.
const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

/// Removes what the test made in podman, whether it passed or not.
struct Cleanup {
    containers: Vec<String>,
    volumes: Vec<String>,
    images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = podman(&["rm", "-f", "-t", "0", c]);
        }
        for v in &self.volumes {
            let _ = podman(&["volume", "rm", "-f", v]);
        }
        for i in &self.images {
            let _ = podman(&["rmi", "-f", i]);
        }
    }
}

fn context(dir: &Path) {
    for d in ["rootfs/data", "rootfs/run/docker/plugins"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy(volume_plugin(), dir.join("rootfs/volume-plugin")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        r#"{"description":"sample","entrypoint":["/volume-plugin"],
            "interface":{"types":["docker.volumedriver/1.0"],"socket":"sample.sock"},
            "propagatedMount":"/data","env":[{"name":"VOLUME_ROOT","value":"/data"}]}"#,
    )
    .unwrap();
}

fn drop_ins_of(id: &str) -> Vec<PathBuf> {
    std::fs::read_dir(DROP_INS)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().contains(id))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn podman_uses_a_published_volume_plugin_with_nothing_configured() {
    assert!(
        is_root(),
        "podman's rootful tier and runc need root; CI runs as root"
    );
    assert!(
        Path::new(PODMAN).exists(),
        "podman is missing: `cargo xtask test` installs it"
    );
    let tmp = tempfile::Builder::new()
        .prefix("ppm")
        .tempdir_in("/tmp")
        .unwrap();
    let root = tmp.path().join("root");
    let run = tmp.path().join("run");
    let _supervisors = Supervisors(run.clone());
    let pid = std::process::id();
    // A name with a registry host and a path, as installed plugins have.
    let name = format!("127.0.0.1:5999/pmtest/vol{pid}:1.0");
    let volume = format!("pmvol{pid}");
    let image = format!("localhost/pcbusybox-pm{pid}:1");
    let container = format!("pmlong{pid}");
    let mut cleanup = Cleanup {
        containers: vec![container.clone()],
        volumes: vec![volume.clone()],
        images: vec![image.clone()],
    };
    let cli = |args: &[&str]| {
        let mut c = pluginctl(&root);
        c.arg("--exec-root").arg(&run).args(args);
        c.output().unwrap()
    };
    let ctx = tmp.path().join("ctx");
    context(&ctx);
    ok(&pluginctl(&root)
        .args(["create", &name])
        .arg(&ctx)
        .output()
        .unwrap());
    let id = ok(&cli(&["inspect", "--format", "{{.Id}}", &name]))
        .trim()
        .to_owned();
    ok(&cli(&["enable", "--publish", &name]));
    let drop_in = drop_ins_of(&id);
    assert_eq!(drop_in.len(), 1, "one drop-in for the plugin: {drop_in:?}");

    // As a user would: nothing configured, the plugin is there.
    ok(&podman(&["volume", "create", "--driver", &name, &volume]));
    let listed = ok(&podman(&[
        "volume",
        "ls",
        "--format",
        "{{.Driver}} {{.Name}}",
    ]));
    assert!(listed.contains(&format!("{name} {volume}")), "{listed}");
    let driver = ok(&podman(&[
        "volume",
        "inspect",
        "--format",
        "{{.Driver}}",
        &volume,
    ]));
    assert_eq!(driver.trim(), name);
    ok(&podman(&[
        "import",
        busybox_tar(tmp.path()).to_str().unwrap(),
        &image,
    ]));
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend(ULIMITS);
    let mount = format!("{volume}:/data");
    args.extend(["-v", &mount, &image, "/busybox", "sh", "-c"]);
    args.push("echo written-by-podman > /data/file");
    ok(&podman(&args));
    let host_side = root
        .join("plugins")
        .join(&id)
        .join("propagated-mount")
        .join(&volume);
    assert_eq!(
        std::fs::read_to_string(host_side.join("file")).unwrap(),
        "written-by-podman\n"
    );

    // In use: a container holds the volume; disable refuses, even after
    // the supervisor was killed and restored; ls says so.
    let mut args = vec!["run", "-d", "--name", &container, "--network", "none"];
    args.extend(ULIMITS);
    args.extend(["-v", &mount, &image, "/busybox", "sleep", "600"]);
    ok(&podman(&args));
    let err = fails(&cli(&["disable", &name]));
    assert!(
        err.contains("is in use") && err.contains(&format!("{volume} (1 mount)")),
        "{err}"
    );
    let ls = cli(&["ls"]);
    assert!(
        String::from_utf8_lossy(&ls.stderr).contains("is in use: 1 mount(s) of 1 volume(s)"),
        "{}",
        String::from_utf8_lossy(&ls.stderr)
    );
    let sup = pluginctl_runtime::supervise::live(&run)
        .into_iter()
        .find(|(i, _)| *i == id)
        .map(|(_, p)| p)
        .expect("a supervisor");
    assert!(
        Command::new("kill")
            .args(["-9", &sup.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while pluginctl_runtime::supervise::live(&run)
        .iter()
        .any(|(i, _)| *i == id)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the supervisor lives on"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(ok(&cli(&["restore"])).contains("started"));
    assert_eq!(
        drop_ins_of(&id).len(),
        1,
        "restore writes the drop-in again"
    );
    let err = fails(&cli(&["disable", &name]));
    assert!(err.contains("is in use"), "after a restart: {err}");
    ok(&podman(&["rm", "-f", "-t", "0", &container]));
    cleanup.containers.clear();

    // Nothing mounted: podman removes the volume, disable stops the plugin
    // and takes the drop-in and the published socket with it.
    ok(&podman(&["volume", "rm", &volume]));
    cleanup.volumes.clear();
    assert!(!host_side.exists());
    ok(&cli(&["disable", &name]));
    assert_eq!(drop_ins_of(&id), Vec::<PathBuf>::new());
    let published = Path::new("/run/docker/plugins").join(format!("{name}.sock"));
    assert!(std::fs::symlink_metadata(&published).is_err());
    assert!(
        !Path::new("/run/docker/plugins/127.0.0.1:5999").exists(),
        "disable leaves no directory the name made"
    );
    let gone = podman(&["volume", "create", "--driver", &name, "after"]);
    assert!(!gone.status.success(), "podman still finds the plugin");
    ok(&cli(&["rm", &name]));
}
