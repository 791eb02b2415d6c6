//! Interop with a real dockerd (Debian docker.io 20.10) through the real
//! distribution registry: a plugin pushed by pluginctl installs, enables
//! and serves volumes under Docker; a plugin pushed by Docker installs with
//! pluginctl with the same config; privileges equal Docker's API answer.

mod common;

use common::*;

use std::path::Path;

use pluginctl_testkit::docker::Dockerd;
use pluginctl_testkit::registry::Registry;

fn context(dir: &Path, config: &str) {
    for d in ["rootfs/data", "rootfs/run/docker/plugins", "rootfs/tmp"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy(volume_plugin(), dir.join("rootfs/volume-plugin")).unwrap();
    std::fs::write(dir.join("config.json"), config).unwrap();
}

const CONFIG: &str = r#"{
  "description": "sample volume plugin",
  "documentation": "https://docs.docker.com/engine/extend/config/",
  "entrypoint": ["/volume-plugin"],
  "workdir": "/",
  "interface": {"types": ["docker.volumedriver/1.0"], "socket": "sample.sock"},
  "propagatedMount": "/data",
  "linux": {"capabilities": ["CAP_SYS_ADMIN"]},
  "env": [{"name": "VOLUME_ROOT", "value": "/data"}, {"name": "DEBUG", "settable": ["value"], "value": "0"}]
}"#;

/// An image of one file, the static busybox, imported into `docker`.
fn busybox_image(docker: &Dockerd, tmp: &Path) -> String {
    ok(&docker.docker(&["import", busybox_tar(tmp).to_str().unwrap(), "pcbusybox:1"]));
    "pcbusybox:1".to_owned()
}

fn inspect_config(json: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v[0]["Config"].clone()
}

#[test]
fn docker_and_pluginctl_install_each_others_plugins() {
    let reg = Registry::plain();
    let docker = Dockerd::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let ctx = tmp.path().join("ctx");
    context(&ctx, CONFIG);

    // pluginctl → Docker: install, inspect, enable, serve a volume.
    let ours = format!("{}/interop/ours:1.0", reg.host);
    ok(&pluginctl(&root)
        .args(["create", &ours])
        .arg(&ctx)
        .output()
        .unwrap());
    let our_config = inspect_config(&ok(&pluginctl(&root)
        .args(["inspect", &ours])
        .output()
        .unwrap()));
    ok(&pluginctl(&root).args(["push", &ours]).output().unwrap());
    ok(&docker.docker(&["plugin", "install", "--grant-all-permissions", &ours]));
    let docker_view = inspect_config(&ok(&docker.docker(&["plugin", "inspect", &ours])));
    assert_eq!(
        docker_view, our_config,
        "Docker reads our config as we wrote it"
    );
    let enabled = ok(&docker.docker(&["plugin", "inspect", "--format", "{{.Enabled}}", &ours]));
    assert_eq!(enabled.trim(), "true", "{}", docker.log());
    ok(&docker.docker(&["volume", "create", "-d", &ours, "v1"]));
    let vols = ok(&docker.docker(&["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]));
    assert!(vols.contains(&format!("{ours} v1")), "{vols}");
    ok(&docker.docker(&["volume", "rm", "v1"]));
    ok(&docker.docker(&["plugin", "disable", &ours]));

    // Privileges: Docker's API answer for our plugin, and for a config
    // asking for everything there is.
    let api = ok(&docker.api_get(&format!("/plugins/privileges?remote={ours}")));
    let mine = ok(&pluginctl(&root)
        .args(["privileges", "--format", "json", &ours])
        .output()
        .unwrap());
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&api).unwrap(),
        serde_json::from_str::<serde_json::Value>(&mine).unwrap()
    );
    let all = tmp.path().join("all");
    context(
        &all,
        r#"{"entrypoint":["/volume-plugin"],"interface":{"types":["docker.volumedriver/1.0"],"socket":"s.sock"},
            "network":{"type":"host"},"ipcHost":true,"pidHost":true,
            "mounts":[{"name":"m","source":"/srv","destination":"/srv","type":"bind","options":["rbind"]},
                      {"name":"nosrc","destination":"/x","type":"bind"}],
            "linux":{"allowAllDevices":true,"capabilities":["CAP_SYS_ADMIN","CAP_NET_ADMIN"],
                     "devices":[{"name":"fuse","path":"/dev/fuse"}]}}"#,
    );
    let everything = format!("{}/interop/everything:1", reg.host);
    ok(&pluginctl(&root)
        .args(["create", &everything])
        .arg(&all)
        .output()
        .unwrap());
    ok(&pluginctl(&root)
        .args(["push", &everything])
        .output()
        .unwrap());
    let api = ok(&docker.api_get(&format!("/plugins/privileges?remote={everything}")));
    let mine = ok(&pluginctl(&root)
        .args(["privileges", "--format", "json", &everything])
        .output()
        .unwrap());
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&api).unwrap(),
        serde_json::from_str::<serde_json::Value>(&mine).unwrap()
    );

    // Docker → pluginctl: created and pushed by Docker, installed by us.
    let theirs = format!("{}/interop/theirs:1.0", reg.host);
    ok(&docker.docker(&["plugin", "create", &theirs, ctx.to_str().unwrap()]));
    ok(&docker.docker(&["plugin", "push", &theirs]));
    let their_config = inspect_config(&ok(&docker.docker(&["plugin", "inspect", &theirs])));
    let other_root = tmp.path().join("other");
    ok(&pluginctl(&other_root)
        .args(["install", "--disable", "--grant-all-permissions", &theirs])
        .output()
        .unwrap());
    let installed = inspect_config(&ok(&pluginctl(&other_root)
        .args(["inspect", &theirs])
        .output()
        .unwrap()));
    assert_eq!(
        installed, their_config,
        "we read Docker's config as Docker does"
    );
    let id: serde_json::Value = serde_json::from_str(&ok(&pluginctl(&other_root)
        .args(["inspect", &theirs])
        .output()
        .unwrap()))
    .unwrap();
    let rootfs = rootfs_view(&other_root, id[0]["Id"].as_str().unwrap());
    assert_eq!(
        std::fs::read(rootfs.path().join("volume-plugin")).unwrap(),
        std::fs::read(volume_plugin()).unwrap()
    );

    // pluginctl runs a plugin, Docker uses it: `enable --publish` links its
    // socket where dockerd discovers legacy plugins.
    let name = format!("pcpub{}", std::process::id());
    let run = tmp.path().join("run");
    let ctl = |args: &[&str]| {
        let mut c = pluginctl(&root);
        c.arg("--exec-root").arg(&run).args(args);
        c.output().unwrap()
    };
    ok(&{
        let mut c = pluginctl(&root);
        c.args(["create", &name]).arg(&ctx);
        c.output().unwrap()
    });
    let _cleanup = Supervisors(run.clone());
    ok(&ctl(&["enable", "--publish", &name]));
    let link = Path::new("/run/docker/plugins").join(format!("{name}.sock"));
    assert!(std::fs::symlink_metadata(&link).is_ok());
    ok(&docker.docker(&["volume", "create", "-d", &name, "v2"]));
    let vols = ok(&docker.docker(&["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]));
    assert!(vols.contains(&format!("{name} v2")), "{vols}");
    let id = ok(&pluginctl(&root)
        .args(["inspect", "--format", "{{.Id}}", &name])
        .output()
        .unwrap());
    let host_side = root
        .join("plugins")
        .join(id.trim())
        .join("propagated-mount/v2");
    assert!(
        host_side.is_dir(),
        "the volume is in the plugin's propagated mount"
    );
    // Docker sees the host's path, and a container writes into the volume.
    let mountpoint =
        ok(&docker.docker(&["volume", "inspect", "--format", "{{.Mountpoint}}", "v2"]));
    assert_eq!(mountpoint.trim(), host_side.to_string_lossy());
    let image = busybox_image(&docker, tmp.path());
    ok(&docker.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "v2:/vol",
        &image,
        "/busybox",
        "sh",
        "-c",
        "echo written-by-a-container > /vol/file",
    ]));
    assert_eq!(
        std::fs::read_to_string(host_side.join("file")).unwrap(),
        "written-by-a-container\n"
    );
    ok(&docker.docker(&["volume", "rm", "v2"]));
    assert!(!host_side.exists());
    ok(&ctl(&["disable", &name]));
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "disable unpublishes"
    );
    ok(&ctl(&["rm", &name]));
}

/// `ls --format`, `ls --filter` and `inspect --format` of the same plugins,
/// created by dockerd and by pluginctl from the same contexts: the same
/// text, byte for byte (but for IDs, which each side makes its own).
#[test]
fn formats_and_filters_print_what_docker_prints() {
    let docker = Dockerd::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let contexts = [
        ("capv", CONFIG.to_owned()),
        (
            "capa",
            r#"{"description": "an authorization and IPAM plugin with a description longer than the column",
                "entrypoint": ["/volume-plugin"],
                "interface": {"types": ["docker.authz/1.0", "docker.ipamdriver/1.0"], "socket": "a.sock"}}"#
                .to_owned(),
        ),
        (
            "capn",
            r#"{"description": "net", "entrypoint": ["/volume-plugin"],
                "interface": {"types": ["docker.networkdriver/1.0"], "socket": "n.sock"}}"#
                .to_owned(),
        ),
    ];
    for (name, config) in &contexts {
        let ctx = tmp.path().join(name);
        context(&ctx, config);
        // dockerd refuses a second plugin with a layer it already has.
        std::fs::write(ctx.join("rootfs/name"), name).unwrap();
        ok(&docker.docker(&["plugin", "create", name, ctx.to_str().unwrap()]));
        ok(&pluginctl(&root)
            .args(["create", name])
            .arg(&ctx)
            .output()
            .unwrap());
    }
    let both = |args: &[&str]| {
        let mut d = vec!["plugin"];
        d.extend(args);
        let theirs = docker.docker(&d);
        let ours = pluginctl(&root).args(args).output().unwrap();
        (theirs, ours)
    };
    // Every difference, not only the first.
    let differ = std::cell::RefCell::new(Vec::new());
    let same = |args: &[&str]| {
        let (theirs, ours) = both(args);
        let (theirs, ours) = (ok(&theirs), ok(&ours));
        if ours != theirs {
            differ.borrow_mut().push(format!(
                "{args:?}:\n docker:    {theirs:?}\n pluginctl: {ours:?}"
            ));
        }
    };

    // Filters: values of one key are ORed, a capability matches as a
    // regular expression, and every interface type of a plugin must match.
    for filters in [
        &["capability=volumedriver"][..],
        &["capability=volume"],
        &["capability=authz"],
        &["capability=authz", "capability=ipamdriver"],
        &["capability=^(authz|ipam)"],
        &["capability=volumedriver", "capability=networkdriver"],
        &["capability=driver"],
        &["capability=nothing"],
        &["enabled=false"],
        &["enabled=true"],
        &["enabled=false", "capability=net"],
    ] {
        let mut args = vec!["ls", "--format", "{{.Name}}"];
        for f in filters {
            args.extend(["--filter", f]);
        }
        same(&args);
    }

    // ls templates and tables.
    for format in [
        "{{.Name}}: {{.Enabled}}",
        "table {{.Name}}\t{{.Description}}\t{{.Enabled}}",
        r"table {{.Name}}\t{{.PluginReference}}",
        "{{.Description}}|{{upper .Name}}",
        "{{json .Name}} {{json .Enabled}}",
    ] {
        same(&["ls", "--format", format]);
        same(&["ls", "--no-trunc", "--format", format]);
    }
    // The default table: the same but for each side's own IDs.
    let (theirs, ours) = both(&["ls"]);
    let without_ids = |o: &std::process::Output| -> Vec<String> {
        ok(o)
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if i == 0 {
                    l.to_owned()
                } else {
                    format!("<id>{}", &l[12..])
                }
            })
            .collect()
    };
    assert_eq!(without_ids(&ours), without_ids(&theirs));

    // inspect templates.
    for template in [
        "{{.Name}}",
        "{{.Enabled}}",
        "{{if .Enabled}}on{{else}}off{{end}}",
        "{{range .Settings.Env}}{{.}} {{end}}",
        "{{index .Settings.Env 0}}",
        "{{len .Settings.Env}}",
        "{{.Settings.Env}}",
        "{{json .Settings}}",
        "{{json .Settings.Env}}",
        r#"{{join .Settings.Env ","}}"#,
        "{{.Config.Interface.Socket}}",
        "{{json .Config.Interface}}",
        "{{upper .Config.Description}}",
        "{{- .Name -}}",
        r#"{{.Config.Description | printf "%.6s"}}"#,
        "{{.PluginReference}}",
        "{{.Config.Entrypoint}}",
        "{{.Config.Linux.Capabilities}}",
        "{{title .Name}}",
        r#"{{split .Name ":"}}"#,
        "{{range $i, $e := .Settings.Env}}{{$i}}={{$e}};{{end}}",
        "{{truncate .Name 3}}",
        "{{pad .Name 1 2}}|",
        "{{len .Id}}",
        "{{len .ID}}",
        r#"{{printf "%.12s" .ID | len}}"#,
        "",
    ] {
        if template.is_empty() {
            // The default: the JSON array (IDs aside).
            let (theirs, ours) = both(&["inspect", "--format", "", "capv"]);
            // IDs, Docker's version and its gzip diff_id (docs/compat.md)
            // aside.
            let strip = |s: &str| {
                let mut v: serde_json::Value = serde_json::from_str(s).unwrap();
                v[0]["Id"] = serde_json::Value::Null;
                let config = v[0]["Config"].as_object_mut().unwrap();
                config.remove("DockerVersion");
                config.remove("rootfs");
                v
            };
            assert_eq!(strip(&ok(&ours)), strip(&ok(&theirs)));
        } else {
            same(&["inspect", "--format", template, "capv"]);
        }
    }
    let differ = differ.into_inner();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    // A field neither has: both fail.
    let (theirs, ours) = both(&["inspect", "--format", "{{.Nope}}", "capv"]);
    assert!(!theirs.status.success());
    let err = fails(&ours);
    assert!(
        err.contains("template parsing error") && err.contains("Nope"),
        "{err}"
    );
    for (name, _) in &contexts {
        ok(&docker.docker(&["plugin", "rm", name]));
    }
}
