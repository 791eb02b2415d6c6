//! The store commands through the binary: create, ls, inspect, rm, gc, with
//! `inspect` held against what Docker 20.10 printed for the same context.

mod common;

use common::*;

use std::process::Command;

#[test]
fn create_ls_inspect_rm_like_docker() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let ctx = tmp.path().join("ctx");
    sample_context(&ctx);
    let name = "127.0.0.1:5001/test/sample:1.0";
    let out = ok(&pluginctl(&root)
        .args(["create", name])
        .arg(&ctx)
        .output()
        .unwrap());
    assert_eq!(out.trim(), name);

    let ls = ok(&pluginctl(&root).arg("ls").output().unwrap());
    let lines: Vec<&str> = ls.lines().collect();
    assert_eq!(lines.len(), 2, "{ls}");
    let cols: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(cols, ["ID", "NAME", "DESCRIPTION", "ENABLED"]);
    assert!(
        lines[1].contains(name) && lines[1].ends_with("false"),
        "{ls}"
    );
    let id12 = lines[1].split_whitespace().next().unwrap().to_owned();
    assert_eq!(id12.len(), 12);
    let quiet = ok(&pluginctl(&root).args(["ls", "-q"]).output().unwrap());
    assert_eq!(quiet.trim(), id12);
    let none = ok(&pluginctl(&root)
        .args(["ls", "--filter", "enabled=true", "-q"])
        .output()
        .unwrap());
    assert!(none.trim().is_empty());
    let vol = ok(&pluginctl(&root)
        .args(["ls", "-q", "--filter", "capability=volumedriver"])
        .output()
        .unwrap());
    assert_eq!(vol.trim(), id12);
    let net = ok(&pluginctl(&root)
        .args(["ls", "-q", "--filter", "capability=networkdriver"])
        .output()
        .unwrap());
    assert!(net.trim().is_empty());

    // inspect: Docker's Plugin object; Config as Docker's but for the
    // fields that name Docker itself or its (gzip) diff_id.
    let ours: serde_json::Value = serde_json::from_str(&ok(&pluginctl(&root)
        .args(["inspect", &id12])
        .output()
        .unwrap()))
    .unwrap();
    let mut docker: serde_json::Value = serde_json::from_slice(
        &std::fs::read(testdata("plugin-inspect-after-create.json")).unwrap(),
    )
    .unwrap();
    let (o, d) = (&ours[0], &mut docker[0]);
    assert_eq!(o["Name"], d["Name"]);
    assert_eq!(o["PluginReference"], d["PluginReference"]);
    assert_eq!(o["Enabled"], d["Enabled"]);
    assert_eq!(o["Settings"], d["Settings"]);
    let mut oc = o["Config"].clone();
    let dc = d["Config"].as_object_mut().unwrap();
    dc.remove("DockerVersion");
    dc.remove("rootfs");
    oc.as_object_mut().unwrap().remove("rootfs");
    assert_eq!(oc, serde_json::Value::Object(dc.clone()));
    let keys: Vec<&String> = o.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "Config",
            "Enabled",
            "Id",
            "Name",
            "PluginReference",
            "Settings"
        ]
    );

    let templ = ok(&pluginctl(&root)
        .args([
            "inspect",
            "--format",
            "{{.Name}} {{.Config.Interface.Socket}} {{json .Settings.Env}}",
            name,
        ])
        .output()
        .unwrap());
    assert_eq!(templ.trim(), format!("{name} sample.sock [\"DEBUG=0\"]"));

    // Errors: one line, naming the thing, non-zero.
    let out = pluginctl(&root).args(["inspect", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("\"nope\" not found"), "{err}");
    let out = pluginctl(&root)
        .args(["create", name])
        .arg(&ctx)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    let rm = ok(&pluginctl(&root).args(["rm", name]).output().unwrap());
    assert_eq!(rm.trim(), name);
    assert!(
        ok(&pluginctl(&root).args(["ls", "-q"]).output().unwrap())
            .trim()
            .is_empty()
    );
    let blobs = std::fs::read_dir(root.join("content/blobs/sha256")).map_or(0, Iterator::count);
    assert_eq!(blobs, 0, "rm collects the plugin's blobs");
}

#[test]
fn rm_unmounts_what_is_mounted_under_the_plugin_and_keeps_its_data() {
    assert!(
        is_root(),
        "mounting needs root: run the tests as root (CI does)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let ctx = tmp.path().join("ctx");
    sample_context(&ctx);
    ok(&pluginctl(&root)
        .args(["create", "m"])
        .arg(&ctx)
        .output()
        .unwrap());
    let v: serde_json::Value = serde_json::from_str(&ok(&pluginctl(&root)
        .args(["inspect", "m"])
        .output()
        .unwrap()))
    .unwrap();
    let dir = root.join("plugins").join(v[0]["Id"].as_str().unwrap());
    let host = tmp.path().join("host data");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("precious"), b"keep me").unwrap();
    let point = dir.join("propagated-mount");
    std::fs::create_dir_all(&point).unwrap();
    let st = Command::new("mount")
        .arg("--bind")
        .arg(&host)
        .arg(&point)
        .status()
        .unwrap();
    assert!(st.success());
    let nested = point.join("nested");
    std::fs::create_dir_all(&nested).unwrap();
    assert!(
        Command::new("mount")
            .args(["-t", "tmpfs", "none"])
            .arg(&nested)
            .status()
            .unwrap()
            .success()
    );

    ok(&pluginctl(&root).args(["rm", "m"]).output().unwrap());
    assert!(!dir.exists());
    assert_eq!(std::fs::read(host.join("precious")).unwrap(), b"keep me");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&dir.to_string_lossy().replace(' ', "\\040")),
        "{mounts}"
    );
}

#[test]
fn an_unreadable_record_is_named_and_hides_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let ctx = tmp.path().join("ctx");
    sample_context(&ctx);
    for name in ["good:1", "damaged:1", "future:1"] {
        ok(&pluginctl(&root)
            .arg("create")
            .arg(name)
            .arg(&ctx)
            .output()
            .unwrap());
    }
    let id_of = |name: &str| {
        ok(&pluginctl(&root)
            .args(["inspect", "--format", "{{.Id}}", name])
            .output()
            .unwrap())
        .trim()
        .to_owned()
    };
    let (damaged, future) = (id_of("damaged:1"), id_of("future:1"));
    let record = |id: &str| root.join("plugins").join(id).join("plugin.json");
    std::fs::write(record(&damaged), "{\"id\": ").unwrap();
    let text = std::fs::read_to_string(record(&future)).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    // 2: a plugin on the layer store (1 is a flattened rootfs's).
    assert_eq!(v["format"], 2, "records say their format");
    v["format"] = 3.into();
    std::fs::write(record(&future), serde_json::to_vec(&v).unwrap()).unwrap();

    let out = pluginctl(&root).args(["ls", "-q"]).output().unwrap();
    let listed = ok(&out);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "plugin {damaged} cannot be read: {}",
            record(&damaged).display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("record format 3 is from a later pluginctl"),
        "{stderr}"
    );
    // Their blobs cannot be told from garbage: gc refuses, naming one.
    let err = fails(&pluginctl(&root).arg("gc").output().unwrap());
    assert!(err.contains("not collecting garbage while"), "{err}");
    // Removing a readable plugin still works (its gc is left for later).
    ok(&pluginctl(&root).args(["rm", "good:1"]).output().unwrap());
    // rm -f by ID removes an unreadable one; without -f it is not found.
    fails(&pluginctl(&root).args(["rm", &damaged]).output().unwrap());
    assert_eq!(
        ok(&pluginctl(&root)
            .args(["rm", "-f", &damaged[..12]])
            .output()
            .unwrap())
        .trim(),
        damaged
    );
    ok(&pluginctl(&root)
        .args(["rm", "-f", &future])
        .output()
        .unwrap());
    ok(&pluginctl(&root).arg("gc").output().unwrap());
    assert_eq!(std::fs::read_dir(root.join("plugins")).unwrap().count(), 0);
}

#[test]
fn check_names_what_changed_since_install() {
    check_case("flat");
    check_case("overlay");
}

/// Two plugins from one context: under overlay they share their layer, so
/// a file changed in it shows in both, named with the layer.
fn check_case(driver: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let ctx = tmp.path().join("ctx");
    sample_context(&ctx);
    std::fs::create_dir_all(ctx.join("rootfs/etc")).unwrap();
    std::fs::write(ctx.join("rootfs/etc/conf"), "a=1\n").unwrap();
    std::fs::write(ctx.join("rootfs/etc/gone"), "x").unwrap();
    for name in ["checked:1", "other:1"] {
        ok(&pluginctl(&root)
            .args(["--storage-driver", driver, "create", name])
            .arg(&ctx)
            .output()
            .unwrap());
    }
    let out = ok(&pluginctl(&root).arg("check").output().unwrap());
    assert_eq!(out, "checked:1: ok\nother:1: ok\n");

    let id = ok(&pluginctl(&root)
        .args(["inspect", "--format", "{{.Id}}", "checked:1"])
        .output()
        .unwrap())
    .trim()
    .to_owned();
    let (files, suffix) = if let Some(chain) = chain_of(&root, &id) {
        assert_eq!(driver, "overlay");
        let hex = chain.strip_prefix("sha256:").unwrap().to_owned();
        (
            root.join("layers").join(&hex).join("diff"),
            format!(" (layer {})", &hex[..12]),
        )
    } else {
        assert_eq!(driver, "flat");
        (root.join("plugins").join(&id).join("rootfs"), String::new())
    };
    std::fs::write(files.join("etc/conf"), "a=2\n").unwrap();
    std::fs::remove_file(files.join("etc/gone")).unwrap();
    std::fs::write(files.join("etc/new"), "y").unwrap();
    let out = pluginctl(&root)
        .args(["check", "checked:1", "other:1"])
        .output()
        .unwrap();
    let err = fails(&out);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let differ = |name: &str| {
        format!(
            "{name}: changed etc/conf{suffix}\n{name}: missing etc/gone{suffix}\n{name}: added etc/new{suffix}\n"
        )
    };
    if driver == "flat" {
        assert_eq!(stdout, differ("checked:1") + "other:1: ok\n");
        assert!(err.contains("1 of 2 plugins differ"), "{err}");
    } else {
        assert_eq!(stdout, differ("checked:1") + &differ("other:1"));
        assert!(err.contains("2 of 2 plugins differ"), "{err}");
    }
    // A blob that no longer matches its digest is named.
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("plugins").join(&id).join("plugin.json")).unwrap(),
    )
    .unwrap();
    let digest = record["layers"][0]["digest"].as_str().unwrap().to_owned();
    let blob = root
        .join("content/blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap());
    let mut bytes = std::fs::read(&blob).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    let out = pluginctl(&root)
        .args(["check", "other:1"])
        .output()
        .unwrap();
    fails(&out);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with(&format!("other:1: blob {digest}: its bytes hash to")),
        "{stdout}"
    );
}
