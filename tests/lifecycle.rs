//! The registry half of the lifecycle through the binary, against the real
//! distribution registry: create → push → rm → privileges → install → set.

mod common;

use common::*;

use std::process::Command;

use pluginctl_testkit::registry::Registry;

#[test]
fn create_push_rm_privileges_install_set() {
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(ctx.join("rootfs/bin")).unwrap();
    std::fs::write(ctx.join("rootfs/bin/volume-stub"), b"#!/bin/sh\n").unwrap();
    std::fs::copy(
        testdata("plugin-context-config.json"),
        ctx.join("config.json"),
    )
    .unwrap();
    let name = format!("{}/test/sample:1.0", reg.host);

    ok(&pluginctl(&root)
        .args(["create", &name])
        .arg(&ctx)
        .output()
        .unwrap());
    let created: serde_json::Value = serde_json::from_str(&ok(&pluginctl(&root)
        .args(["inspect", &name])
        .output()
        .unwrap()))
    .unwrap();
    let pushed = ok(&pluginctl(&root).args(["push", &name]).output().unwrap());
    let words: Vec<&str> = pushed.split_whitespace().collect();
    assert_eq!(words[..3], ["1.0:", "digest:", words[2]]);
    assert!(
        words[2].starts_with("sha256:") && words[3] == "size:",
        "{pushed}"
    );
    // What the registry holds is what skopeo reads: our manifest, byte for byte.
    let raw = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{name}"),
        ])
        .output()
        .unwrap();
    assert!(raw.status.success());
    let manifest_digest = pluginctl_testkit::image::sha256_of(&raw.stdout);
    assert_eq!(manifest_digest, words[2]);
    assert_eq!(words[4], raw.stdout.len().to_string());
    // A second push moves nothing and names the same digest.
    assert_eq!(
        ok(&pluginctl(&root).args(["push", &name]).output().unwrap()),
        pushed
    );

    ok(&pluginctl(&root).args(["rm", &name]).output().unwrap());

    // privileges: Docker's answer for this config, from the registry.
    let json = ok(&pluginctl(&root)
        .args(["privileges", "--format", "json", &name])
        .output()
        .unwrap());
    let ours: serde_json::Value = serde_json::from_str(&json).unwrap();
    let docker: serde_json::Value =
        serde_json::from_slice(&std::fs::read(testdata("plugin-privileges-api.json")).unwrap())
            .unwrap();
    assert_eq!(ours, docker);
    let table = ok(&pluginctl(&root)
        .args(["privileges", &name])
        .output()
        .unwrap());
    assert!(
        table.contains("network") && table.contains("CAP_SYS_ADMIN"),
        "{table}"
    );
    let err = fails(
        &pluginctl(&root)
            .args(["privileges", &format!("{}/test/absent:1", reg.host)])
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("test/absent") && err.contains("unknown"),
        "{err}"
    );

    // install: no terminal and no grant → refused, nothing installed.
    let err = fails(
        &pluginctl(&root)
            .args(["install", "--disable", &name])
            .output()
            .unwrap(),
    );
    assert!(err.contains("--grant-all-permissions"), "{err}");
    assert!(
        ok(&pluginctl(&root).args(["ls", "-q"]).output().unwrap())
            .trim()
            .is_empty()
    );

    let out = ok(&pluginctl(&root)
        .args([
            "install",
            "--disable",
            "--grant-all-permissions",
            &name,
            "DEBUG=1",
        ])
        .output()
        .unwrap());
    assert!(out.contains(&name), "{out}");
    let installed: serde_json::Value = serde_json::from_str(&ok(&pluginctl(&root)
        .args(["inspect", &name])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(
        installed[0]["Config"], created[0]["Config"],
        "the config round-trips"
    );
    assert_eq!(
        installed[0]["Settings"]["Env"],
        serde_json::json!(["DEBUG=1"])
    );
    assert_eq!(installed[0]["PluginReference"], serde_json::json!(name));
    assert_eq!(installed[0]["Enabled"], serde_json::json!(false));
    let id = installed[0]["Id"].as_str().unwrap().to_owned();
    assert_eq!(
        std::fs::read(rootfs_view(&root, &id).path().join("bin/volume-stub")).unwrap(),
        b"#!/bin/sh\n"
    );
    let err = fails(
        &pluginctl(&root)
            .args(["install", "--disable", "--grant-all-permissions", &name])
            .output()
            .unwrap(),
    );
    assert!(err.contains("already exists"), "{err}");

    // set: env freely; a wider mount source needs a grant.
    ok(&pluginctl(&root)
        .args(["set", &name, "DEBUG=2"])
        .output()
        .unwrap());
    let err = fails(
        &pluginctl(&root)
            .args(["set", &name, "hosttmp.source=/srv"])
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("--grant-all-permissions") || err.contains("not granted"),
        "{err}"
    );
    ok(&pluginctl(&root)
        .args([
            "set",
            "--grant-all-permissions",
            &name,
            "hosttmp.source=/srv",
        ])
        .output()
        .unwrap());
    let err = fails(
        &pluginctl(&root)
            .args(["set", &name, "NOPE=1"])
            .output()
            .unwrap(),
    );
    assert!(err.contains("NOPE"), "{err}");
    let after: serde_json::Value = serde_json::from_str(&ok(&pluginctl(&root)
        .args(["inspect", &name])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(after[0]["Settings"]["Env"], serde_json::json!(["DEBUG=2"]));
    assert_eq!(
        after[0]["Settings"]["Mounts"][0]["Source"],
        serde_json::json!("/srv")
    );

    // Without --disable: installed, but the missing runtime is an error.
    let alias = "other:1";
    let err = fails(
        &pluginctl(&root)
            .args([
                "install",
                "--grant-all-permissions",
                "--alias",
                alias,
                &name,
            ])
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("stays disabled") && err.contains("exited"),
        "{err}"
    );
    let ls = ok(&pluginctl(&root).args(["ls"]).output().unwrap());
    assert!(ls.contains("other:1"), "{ls}");
}

#[test]
fn upgrade_keeps_id_and_user_settings_and_takes_new_defaults() {
    // The flat driver: this test is about the rootfs switch (the layered
    // upgrade is `tests/layers.rs`'s).
    let flat = |root: &std::path::Path| {
        let mut c = pluginctl(root);
        c.env("PLUGINCTL_STORAGE_DRIVER", "flat");
        c
    };
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let root = tmp.path().join("root");
    let repo = format!("{}/test/up", reg.host);
    for (tag, extra_env, file) in [
        ("1.0", "", "v1"),
        (
            "2.0",
            r#",{"name":"NEW","settable":["value"],"value":"x"}"#,
            "v2",
        ),
    ] {
        let ctx = tmp.path().join(tag);
        std::fs::create_dir_all(ctx.join("rootfs")).unwrap();
        std::fs::write(ctx.join("rootfs/version"), file).unwrap();
        std::fs::write(
            ctx.join("config.json"),
            format!(
                r#"{{"description":"{file}","interface":{{"types":["docker.volumedriver/1.0"],"socket":"s.sock"}},
                   "env":[{{"name":"DEBUG","settable":["value"],"value":"0"}}{extra_env}]}}"#
            ),
        )
        .unwrap();
        let name = format!("{repo}:{tag}");
        ok(&pluginctl(&src)
            .args(["create", &name])
            .arg(&ctx)
            .output()
            .unwrap());
        ok(&pluginctl(&src).args(["push", &name]).output().unwrap());
    }
    let v1 = format!("{repo}:1.0");
    ok(&flat(&root)
        .args(["install", "--disable", &v1, "DEBUG=1"])
        .output()
        .unwrap());
    let before: serde_json::Value =
        serde_json::from_str(&ok(&flat(&root).args(["inspect", &v1]).output().unwrap())).unwrap();
    let id = before[0]["Id"].as_str().unwrap().to_owned();
    std::fs::create_dir_all(root.join("plugins").join(&id).join("propagated-mount")).unwrap();
    std::fs::write(
        root.join("plugins").join(&id).join("propagated-mount/data"),
        b"keep",
    )
    .unwrap();

    let err = fails(
        &flat(&root)
            .args(["upgrade", &v1, "127.0.0.1:1/other/repo:2"])
            .output()
            .unwrap(),
    );
    assert!(err.contains("--skip-remote-check"), "{err}");

    ok(&flat(&root)
        .args(["upgrade", &v1, &format!("{repo}:2.0")])
        .output()
        .unwrap());
    let after: serde_json::Value =
        serde_json::from_str(&ok(&flat(&root).args(["inspect", &v1]).output().unwrap())).unwrap();
    assert_eq!(after[0]["Id"], before[0]["Id"]);
    assert_eq!(after[0]["Name"], before[0]["Name"]);
    assert_eq!(after[0]["Config"]["Description"], serde_json::json!("v2"));
    assert_eq!(
        after[0]["Settings"]["Env"],
        serde_json::json!(["DEBUG=1", "NEW=x"])
    );
    assert_eq!(
        after[0]["PluginReference"],
        serde_json::json!(format!("{repo}:2.0"))
    );
    let dir = root.join("plugins").join(&id);
    assert_eq!(std::fs::read(dir.join("rootfs/version")).unwrap(), b"v2");
    assert_eq!(
        std::fs::read(dir.join("propagated-mount/data")).unwrap(),
        b"keep"
    );
    assert!(!dir.join("rootfs.old").exists() && !dir.join("rootfs.new").exists());

    // A crash between the rootfs swap and the record: the next command
    // finishes the switch. Between the next record and the swap: undone.
    let (cur, old, new) = (
        dir.join("rootfs"),
        dir.join("rootfs.old"),
        dir.join("rootfs.new"),
    );
    let record = std::fs::read(dir.join("plugin.json")).unwrap();
    std::fs::write(dir.join("plugin.json.next"), &record).unwrap();
    std::fs::create_dir_all(&new).unwrap();
    std::fs::write(new.join("version"), b"half").unwrap();
    ok(&flat(&root).args(["ls"]).output().unwrap());
    assert!(!new.exists() && !dir.join("plugin.json.next").exists());
    assert_eq!(std::fs::read(cur.join("version")).unwrap(), b"v2");
    std::fs::rename(&cur, &old).unwrap();
    std::fs::create_dir_all(&cur).unwrap();
    std::fs::write(cur.join("version"), b"v3").unwrap();
    std::fs::write(dir.join("plugin.json.next"), &record).unwrap();
    ok(&flat(&root).args(["ls"]).output().unwrap());
    assert!(!old.exists() && !dir.join("plugin.json.next").exists());
    assert_eq!(std::fs::read(cur.join("version")).unwrap(), b"v3");
}

#[test]
fn a_zstd_plugin_round_trips_and_unknown_interface_types_are_warned_about() {
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(ctx.join("rootfs/bin")).unwrap();
    std::fs::write(ctx.join("rootfs/bin/tool"), b"zstd layer content").unwrap();
    std::fs::write(
        ctx.join("config.json"),
        r#"{"interface":{"types":["docker.volumedriver/1.0","docker.telepathydriver/1.0"],"socket":"s.sock"}}"#,
    )
    .unwrap();
    let root = tmp.path().join("root");
    let name = format!("{}/test/zstd:1", reg.host);
    let out = pluginctl(&root)
        .args(["create", "--compress", "zstd", &name])
        .arg(&ctx)
        .output()
        .unwrap();
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning") && err.contains("docker.telepathydriver/1.0"),
        "{err}"
    );
    ok(&pluginctl(&root).args(["push", &name]).output().unwrap());
    ok(&pluginctl(&root).args(["rm", &name]).output().unwrap());
    // Docker would skip a zstd layer; we apply it.
    ok(&pluginctl(&root)
        .args(["install", "--disable", &name])
        .output()
        .unwrap());
    let v: serde_json::Value = serde_json::from_str(&ok(&pluginctl(&root)
        .args(["inspect", &name])
        .output()
        .unwrap()))
    .unwrap();
    let id = v[0]["Id"].as_str().unwrap();
    assert_eq!(
        std::fs::read(rootfs_view(&root, id).path().join("bin/tool")).unwrap(),
        b"zstd layer content"
    );
}

#[test]
fn an_image_that_is_not_a_plugin_is_refused() {
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let image = pluginctl_testkit::image::Image::new_oci(50, &[1000]);
    pluginctl_testkit::image::write_oci_layout(&layout, "v1", &image);
    let target = format!("{}/test/notaplugin:v1", reg.host);
    let st = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "-q", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("docker://{target}"))
        .status()
        .unwrap();
    assert!(st.success());
    let root = tmp.path().join("root");
    let err = fails(
        &pluginctl(&root)
            .args(["install", "--disable", "--grant-all-permissions", &target])
            .output()
            .unwrap(),
    );
    assert!(err.contains("is not a plugin"), "{err}");
    assert!(
        ok(&pluginctl(&root).args(["ls", "-q"]).output().unwrap())
            .trim()
            .is_empty()
    );
}

#[test]
fn an_index_without_this_platform_is_refused_naming_what_it_has() {
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(ctx.join("rootfs")).unwrap();
    std::fs::write(
        ctx.join("config.json"),
        r#"{"interface":{"types":["docker.volumedriver/1.0"],"socket":"s.sock"}}"#,
    )
    .unwrap();
    let src = tmp.path().join("src");
    let name = format!("{}/test/multi:1", reg.host);
    ok(&pluginctl(&src)
        .args(["create", &name])
        .arg(&ctx)
        .output()
        .unwrap());
    let pushed = ok(&pluginctl(&src).args(["push", &name]).output().unwrap());
    let words: Vec<&str> = pushed.split_whitespace().collect();
    let (digest, size) = (words[2], words[4]);
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{digest}","size":{size},"platform":{{"os":"windows","architecture":"amd64"}}}},
            {{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{digest}","size":{size},"platform":{{"os":"linux","architecture":"s390x"}}}}]}}"#
    );
    let put = Command::new("curl")
        .args([
            "-sS",
            "-f",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.index.v1+json",
            "--data-binary",
        ])
        .arg(&index)
        .arg(format!("http://{}/v2/test/multi/manifests/idx", reg.host))
        .output()
        .unwrap();
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    let root = tmp.path().join("root");
    let err = fails(
        &pluginctl(&root)
            .args([
                "install",
                "--disable",
                &format!("{}/test/multi:idx", reg.host),
            ])
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("windows/amd64") && err.contains("linux/s390x"),
        "{err}"
    );
    assert!(
        ok(&pluginctl(&root).args(["ls", "-q"]).output().unwrap())
            .trim()
            .is_empty()
    );
}
