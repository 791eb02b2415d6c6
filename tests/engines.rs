//! Every plugin type through `enable --publish`, used by a real dockerd
//! (Debian's 20.10) that never installed them: the sample network, IPAM,
//! authorization and log drivers of `examples/driver-plugins`, run by
//! pluginctl under runc, found by dockerd where it discovers legacy
//! plugins.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use pluginctl_testkit::docker::Dockerd;

/// A plugin of one sample binary, created and enabled with `--publish`;
/// stopped and removed on drop.
struct Published {
    name: String,
    root: PathBuf,
    run: PathBuf,
    id: String,
    _supervisors: Supervisors,
}

impl Published {
    fn start(tmp: &Path, bin: &str, kind: &str, name: &str) -> Published {
        let ctx = tmp.join(format!("ctx-{name}"));
        for d in ["rootfs/data", "rootfs/run/docker/plugins"] {
            std::fs::create_dir_all(ctx.join(d)).unwrap();
        }
        std::fs::copy(sample_plugin(bin), ctx.join("rootfs/plugin")).unwrap();
        std::fs::write(
            ctx.join("config.json"),
            format!(
                r#"{{"description":"sample {kind}","entrypoint":["/plugin"],
                    "interface":{{"types":["docker.{kind}/1.0"],"socket":"{bin}.sock"}},
                    "env":[{{"name":"SOCKET","value":"{bin}.sock"}}],
                    "propagatedMount":"/data"}}"#
            ),
        )
        .unwrap();
        let root = tmp.join(format!("root-{name}"));
        let run = tmp.join(format!("run-{name}"));
        ok(&pluginctl(&root)
            .args(["create", name])
            .arg(&ctx)
            .output()
            .unwrap());
        let supervisors = Supervisors(run.clone());
        let p = Published {
            name: name.to_owned(),
            id: String::new(),
            root,
            run,
            _supervisors: supervisors,
        };
        let mut p = p;
        ok(&p.cli(&["enable", "--publish", name]));
        p.id = ok(&p.cli(&["inspect", "--format", "{{.Id}}", name]));
        p.id.truncate(p.id.trim_end().len());
        p
    }

    fn cli(&self, args: &[&str]) -> Output {
        let mut c = pluginctl(&self.root);
        c.arg("--exec-root").arg(&self.run).args(args);
        c.output().unwrap()
    }

    /// A file the plugin wrote under its propagated mount, as the host sees
    /// it.
    fn state(&self, file: &str) -> String {
        let path = self
            .root
            .join("plugins")
            .join(&self.id)
            .join("propagated-mount")
            .join(file);
        std::fs::read_to_string(&path).unwrap_or_default()
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        let _ = self.cli(&["rm", "-f", &self.name]);
    }
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within 20 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn network_and_ipam_drivers_serve_dockerd() {
    assert!(is_root(), "runc and dockerd need root; CI runs as root");
    let tmp = tempfile::Builder::new()
        .prefix("pen")
        .tempdir_in("/tmp")
        .unwrap();
    let pid = std::process::id();
    // A name with a registry host and a path, as installed plugins have:
    // dockerd finds `<publish-dir>/<name>.sock` under the directories the
    // name makes.
    let net = Published::start(
        tmp.path(),
        "network-plugin",
        "networkdriver",
        &format!("127.0.0.1:5998/team/pcnet{pid}:1.0"),
    );
    let ipam = Published::start(
        tmp.path(),
        "ipam-plugin",
        "ipamdriver",
        &format!("pcipam{pid}"),
    );
    let docker = Dockerd::start();

    // A network of the plugin's: dockerd asks it to create and delete it.
    let n1 = format!("pcnet1-{pid}");
    ok(&docker.docker(&["network", "create", "-d", &net.name, &n1]));
    let listed = ok(&docker.docker(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]));
    assert!(listed.contains(&format!("{n1} {}", net.name)), "{listed}");
    ok(&docker.docker(&["network", "rm", &n1]));
    let calls = net.state("calls.log");
    assert!(
        calls.contains("CreateNetwork") && calls.contains("DeleteNetwork"),
        "{calls}"
    );

    // Addresses from the IPAM plugin, for a network of the network plugin.
    let n2 = format!("pcnet2-{pid}");
    ok(&docker.docker(&[
        "network",
        "create",
        "-d",
        &net.name,
        "--ipam-driver",
        &ipam.name,
        &n2,
    ]));
    let subnet = ok(&docker.docker(&[
        "network",
        "inspect",
        "--format",
        "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
        &n2,
    ]));
    assert_eq!(subnet.trim(), "10.77.0.0/16 10.77.0.1", "{}", docker.log());
    ok(&docker.docker(&["network", "rm", &n2]));
    // And for dockerd's own bridge driver.
    let n3 = format!("pcnet3-{pid}");
    ok(&docker.docker(&[
        "network",
        "create",
        "-d",
        "bridge",
        "--ipam-driver",
        &ipam.name,
        &n3,
    ]));
    let gateway = ok(&docker.docker(&[
        "network",
        "inspect",
        "--format",
        "{{.Driver}} {{range .IPAM.Config}}{{.Subnet}}{{end}}",
        &n3,
    ]));
    assert_eq!(gateway.trim(), "bridge 10.77.0.0/16");
    ok(&docker.docker(&["network", "rm", &n3]));
    let calls = ipam.state("calls.log");
    assert!(
        calls.contains("RequestPool") && calls.contains("ReleasePool"),
        "{calls}"
    );
    // Disabled, it leaves nothing in the publish dir, directories included.
    ok(&net.cli(&["disable", &net.name]));
    assert!(!Path::new("/run/docker/plugins/127.0.0.1:5998").exists());
}

#[test]
fn a_log_driver_gets_dockerds_fifo_and_serves_docker_logs() {
    assert!(is_root(), "runc and dockerd need root; CI runs as root");
    let tmp = tempfile::Builder::new()
        .prefix("pel")
        .tempdir_in("/tmp")
        .unwrap();
    let pid = std::process::id();
    let log = Published::start(
        tmp.path(),
        "log-plugin",
        "logdriver",
        &format!("pclog{pid}"),
    );
    let docker = Dockerd::start();
    let image = format!("pcbusybox-log{pid}:1");
    ok(&docker.docker(&["import", busybox_tar(tmp.path()).to_str().unwrap(), &image]));
    let id = ok(&docker.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--log-driver",
        &log.name,
        &image,
        "/busybox",
        "sh",
        "-c",
        "echo first line; echo second line",
    ]))
    .trim()
    .to_owned();
    ok(&docker.docker(&["wait", &id]));
    // What the plugin read from dockerd's FIFO, in a file on the host.
    let file = format!("{id}.log");
    wait_for("the plugin writing the container's lines", || {
        log.state(&file).contains("second line")
    });
    assert_eq!(log.state(&file), "first line\nsecond line\n");
    // The driver declares ReadLogs: docker logs reads through it.
    let logs = ok(&docker.docker(&["logs", &id]));
    assert_eq!(logs, "first line\nsecond line\n", "{}", docker.log());
    ok(&docker.docker(&["rm", &id]));
}

#[test]
fn an_authorization_plugin_decides_for_dockerd() {
    assert!(is_root(), "runc and dockerd need root; CI runs as root");
    let tmp = tempfile::Builder::new()
        .prefix("pea")
        .tempdir_in("/tmp")
        .unwrap();
    let pid = std::process::id();
    let authz = Published::start(
        tmp.path(),
        "authz-plugin",
        "authz",
        &format!("pcauthz{pid}"),
    );
    // dockerd finds the plugin at start.
    let docker = Dockerd::start_with(&[&format!("--authorization-plugin={}", authz.name)]);
    let denied = docker.docker(&["volume", "create", &format!("denied-{pid}")]);
    assert!(!denied.status.success());
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(
        err.contains("denied by the sample authz plugin"),
        "{err}\n{}",
        docker.log()
    );
    let allowed = format!("allowed-{pid}");
    ok(&docker.docker(&["volume", "create", &allowed]));
    let listed = ok(&docker.docker(&["volume", "ls", "--format", "{{.Name}}"]));
    assert!(
        listed.contains(&allowed) && !listed.contains("denied-"),
        "{listed}"
    );
    ok(&docker.docker(&["volume", "rm", &allowed]));
    let logged = ok(&authz.cli(&["logs", &authz.name]));
    assert!(logged.contains("volumes/create"), "{logged}");
}
