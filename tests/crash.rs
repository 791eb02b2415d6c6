//! SIGKILL at many points of create, install and rm: the next command sees
//! a consistent store (ls works, no half plugin, no staging left after it)
//! and running the operation again succeeds.

mod common;

use common::*;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use pluginctl_testkit::registry::Registry;

/// A context with enough data that create and install take a while.
fn big_context(dir: &Path) {
    std::fs::create_dir_all(dir.join("rootfs/data")).unwrap();
    for i in 0..40 {
        std::fs::write(
            dir.join(format!("rootfs/data/f{i}")),
            pluginctl_testkit::pattern(i, 256 << 10),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("config.json"),
        r#"{"interface":{"types":["docker.volumedriver/1.0"],"socket":"s.sock"},"entrypoint":["/x"]}"#,
    )
    .unwrap();
}

/// Starts `cmd`, kills it with SIGKILL after `after`.
fn kill_after(mut cmd: Command, after: Duration) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let _ = child.kill();
    let _ = child.wait();
}

/// The store as `ls -q` sees it, and the check that the next command left
/// no half plugin and no staging behind.
fn consistent(root: &Path) -> Vec<String> {
    if !root.exists() {
        // Killed before it made the root: nothing to be inconsistent, and
        // `ls` says the root does not exist rather than make one.
        let err = fails(&pluginctl(root).arg("ls").output().unwrap());
        assert!(err.contains("does not exist"), "{err}");
        assert!(!root.exists(), "ls made the root");
        return Vec::new();
    }
    let ids: Vec<String> = ok(&pluginctl(root)
        .args(["ls", "-q", "--no-trunc"])
        .output()
        .unwrap())
    .lines()
    .map(str::to_owned)
    .collect();
    let mut dirs: Vec<String> = std::fs::read_dir(root.join("plugins"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(
        dirs, want,
        "plugin directories are exactly the listed plugins"
    );
    assert_eq!(
        std::fs::read_dir(root.join("tmp")).unwrap().count(),
        0,
        "no staging left after a command"
    );
    for id in &ids {
        let rec =
            std::fs::read_to_string(root.join("plugins").join(id).join("plugin.json")).unwrap();
        assert!(rec.contains("\"incomplete\": false"), "{rec}");
        assert!(rootfs_view(root, id).path().join("data/f39").is_file());
    }
    // The layer store: no incomplete layer, every recorded one there, and
    // every plugin verifies (a directory without a record is gc's).
    let layers = root.join("layers");
    let names: Vec<String> = match std::fs::read(layers.join("layers.json")) {
        Ok(b) => {
            let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
            let all = v["layers"].as_array().unwrap();
            assert!(all.iter().all(|l| l["incomplete"] != true), "{v}");
            all.iter()
                .map(|l| l["id"].as_str().unwrap()["sha256:".len()..].to_owned())
                .collect()
        }
        Err(_) => Vec::new(),
    };
    for name in &names {
        assert!(layers.join(name).join("diff").is_dir(), "layer {name}");
    }
    if !ids.is_empty() {
        ok(&pluginctl(root).arg("check").output().unwrap());
    }
    ids
}

/// After `gc`, the layer store holds exactly the layers plugins use: no
/// directory without a record (a killed apply or delete leaves one).
fn gc_leaves_no_orphans(root: &Path) {
    ok(&pluginctl(root).arg("gc").output().unwrap());
    let used: Vec<String> = ok(&pluginctl(root)
        .args(["layers", "ls", "-q", "--no-trunc"])
        .output()
        .unwrap())
    .lines()
    .map(|l| l.trim_start_matches("sha256:").to_owned())
    .collect();
    let mut dirs: Vec<String> = std::fs::read_dir(root.join("layers"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "empty")
        .collect();
    dirs.sort();
    let mut want = used;
    want.sort();
    assert_eq!(dirs, want);
}

const DELAYS_MS: [u64; 8] = [1, 5, 10, 20, 35, 60, 100, 160];

#[test]
fn killed_creates_and_removes_leave_a_consistent_store() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let ctx = tmp.path().join("ctx");
    big_context(&ctx);
    for (n, ms) in DELAYS_MS.iter().enumerate() {
        let name = format!("p{n}");
        let mut c = pluginctl(&root);
        c.args(["create", &name]).arg(&ctx);
        kill_after(c, Duration::from_millis(*ms));
        let ids = consistent(&root);
        // Whether it finished or not, creating again ends with the plugin.
        let again = pluginctl(&root)
            .args(["create", &name])
            .arg(&ctx)
            .output()
            .unwrap();
        let listed = pluginctl(&root).args(["inspect", &name]).output().unwrap();
        assert!(listed.status.success() && (again.status.success() || ids.len() == n + 1));
        consistent(&root);
    }
    for (n, ms) in DELAYS_MS.iter().enumerate() {
        let mut c = pluginctl(&root);
        c.args(["rm", &format!("p{n}")]);
        kill_after(c, Duration::from_millis(*ms));
        consistent(&root);
        let _ = pluginctl(&root)
            .args(["rm", &format!("p{n}")])
            .output()
            .unwrap();
        consistent(&root);
    }
    assert!(consistent(&root).is_empty());
    // gc after all of it leaves no blob and no layer behind.
    gc_leaves_no_orphans(&root);
    let blobs = std::fs::read_dir(root.join("content/blobs/sha256")).map_or(0, Iterator::count);
    assert_eq!(blobs, 0);
}

#[test]
fn killed_installs_leave_a_consistent_store() {
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    big_context(&ctx);
    let src = tmp.path().join("src");
    let name = format!("{}/crash/p:1", reg.host);
    ok(&pluginctl(&src)
        .args(["create", &name])
        .arg(&ctx)
        .output()
        .unwrap());
    ok(&pluginctl(&src).args(["push", &name]).output().unwrap());
    let root = tmp.path().join("root");
    for ms in DELAYS_MS {
        let mut c = pluginctl(&root);
        c.args(["install", "--disable", "--grant-all-permissions", &name]);
        kill_after(c, Duration::from_millis(ms));
        let ids = consistent(&root);
        if ids.is_empty() {
            ok(&pluginctl(&root)
                .args(["install", "--disable", "--grant-all-permissions", &name])
                .output()
                .unwrap());
        }
        assert_eq!(consistent(&root).len(), 1);
        ok(&pluginctl(&root).args(["rm", &name]).output().unwrap());
        consistent(&root);
    }
    gc_leaves_no_orphans(&root);
}

#[test]
fn killed_upgrades_leave_the_old_or_the_new_plugin_whole() {
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let repo = format!("{}/crash/up", reg.host);
    for v in ["1", "2"] {
        let ctx = tmp.path().join(format!("ctx{v}"));
        big_context(&ctx);
        std::fs::write(ctx.join("rootfs/version"), v).unwrap();
        let name = format!("{repo}:{v}");
        ok(&pluginctl(&src)
            .args(["create", &name])
            .arg(&ctx)
            .output()
            .unwrap());
        ok(&pluginctl(&src).args(["push", &name]).output().unwrap());
    }
    let root = tmp.path().join("root");
    let v1 = format!("{repo}:1");
    let v2 = format!("{repo}:2");
    ok(&pluginctl(&root)
        .args(["install", "--disable", &v1])
        .output()
        .unwrap());
    for ms in DELAYS_MS {
        let mut c = pluginctl(&root);
        c.args(["upgrade", &v1, &v2]);
        kill_after(c, Duration::from_millis(ms));
        let ids = consistent(&root);
        assert_eq!(ids.len(), 1);
        let dir = root.join("plugins").join(&ids[0]);
        let record = std::fs::read_to_string(dir.join("plugin.json")).unwrap();
        let version =
            std::fs::read_to_string(rootfs_view(&root, &ids[0]).path().join("version")).unwrap();
        // The record and the rootfs always agree.
        let upgraded = record.contains(&format!("\"reference\": \"{v2}\""));
        assert_eq!(version, if upgraded { "2" } else { "1" }, "{record}");
        for leftover in ["rootfs.new", "rootfs.old", "plugin.json.next"] {
            assert!(!dir.join(leftover).exists(), "{leftover} after {ms} ms");
        }
        if upgraded {
            // Back to 1 for the next round.
            ok(&pluginctl(&root)
                .args(["upgrade", &v1, &v1])
                .output()
                .unwrap());
        }
    }
    gc_leaves_no_orphans(&root);
}

#[test]
fn two_processes_creating_removing_and_listing_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let ctx = tmp.path().join("ctx");
    big_context(&ctx);
    let worker = |tag: &'static str| {
        let root = root.clone();
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            for i in 0..6 {
                let name = format!("{tag}{i}");
                ok(&pluginctl(&root)
                    .args(["create", &name])
                    .arg(&ctx)
                    .output()
                    .unwrap());
                ok(&pluginctl(&root).args(["ls", "-q"]).output().unwrap());
                if i % 2 == 1 {
                    ok(&pluginctl(&root).args(["rm", &name]).output().unwrap());
                }
            }
        })
    };
    let (a, b) = (worker("a"), worker("b"));
    a.join().unwrap();
    b.join().unwrap();
    let ls = ok(&pluginctl(&root)
        .args(["ls", "--format", "json"])
        .output()
        .unwrap());
    let v: serde_json::Value = serde_json::from_str(&ls).unwrap();
    let mut names: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["Name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "a0:latest",
            "a2:latest",
            "a4:latest",
            "b0:latest",
            "b2:latest",
            "b4:latest"
        ]
    );
    assert_eq!(consistent(&root).len(), 6);
}
