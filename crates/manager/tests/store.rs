//! The plugin store and `create`: records, lookups, removal, gc, bad input
//! that changes nothing, crash recovery, concurrent commands.

use std::path::Path;

use pluginctl_manager::oci::{Digest, Manifest, PluginConfig};
use pluginctl_manager::{CreateOptions, Error, Manager};
use pluginctl_testkit::tree;

const CONFIG: &str = r#"{
  "description": "sample volume plugin",
  "documentation": "https://docs.docker.com/engine/extend/config/",
  "entrypoint": ["/volume-stub"],
  "interface": {"types": ["docker.volumedriver/1.0"], "socket": "sample.sock"},
  "network": {"type": "host"},
  "mounts": [{"name": "data", "source": "/tmp", "destination": "/data", "type": "bind", "options": ["rbind"], "settable": ["source"]}],
  "env": [{"name": "DEBUG", "settable": ["value"], "value": "0"}]
}"#;

/// Builds a (possibly broken) context in a directory.
type Make = Box<dyn Fn(&Path)>;

fn context(dir: &Path, config: &str) {
    std::fs::create_dir_all(dir.join("rootfs/bin")).unwrap();
    std::fs::write(dir.join("rootfs/bin/volume-stub"), b"#!/bin/sh\nexit 0\n").unwrap();
    std::fs::create_dir_all(dir.join("rootfs/etc")).unwrap();
    std::fs::write(dir.join("rootfs/etc/motd"), b"hello\n").unwrap();
    std::fs::hard_link(dir.join("rootfs/etc/motd"), dir.join("rootfs/etc/motd2")).unwrap();
    std::os::unix::fs::symlink("../bin/volume-stub", dir.join("rootfs/etc/link")).unwrap();
    std::fs::write(dir.join("config.json"), config).unwrap();
}

/// Everything under the root except the content store and the lock, which
/// a failed command must leave as it found them.
fn plugin_dirs(root: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for d in ["plugins", "tmp"] {
        for e in std::fs::read_dir(root.join(d)).unwrap() {
            v.push(format!("{d}/{}", e.unwrap().file_name().to_string_lossy()));
        }
    }
    v.sort();
    v
}

#[test]
fn create_builds_docker_blobs_and_extracts_the_rootfs() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    context(&ctx, CONFIG);
    let m = Manager::open(&tmp.path().join("root")).unwrap();
    let r = m.create("sample", &ctx, &CreateOptions::default()).unwrap();
    assert_eq!(r.name, "docker.io/library/sample:latest");
    assert_eq!(r.familiar_name(), "sample:latest");
    assert_eq!(r.id.len(), 64);
    assert!(!r.enabled && !r.incomplete);

    // The manifest: schema2, plugin config type, one gzip layer.
    let manifest_bytes = m.content().read_all(&r.manifest.digest, 1 << 20).unwrap();
    let manifest = Manifest::parse(None, &manifest_bytes).unwrap();
    assert_eq!(
        manifest.config.media_type.as_str(),
        "application/vnd.docker.plugin.v1+json"
    );
    assert_eq!(manifest.config.digest, r.config_digest);
    assert_eq!(manifest.layers, r.layers);
    assert_eq!(
        manifest.layers[0].media_type.as_str(),
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    // The config blob: the context's config with the uncompressed diff_id.
    let config_bytes = m.content().read_all(&r.config_digest, 1 << 20).unwrap();
    let config = PluginConfig::from_slice(&config_bytes).unwrap();
    let diff_ids = config.rootfs.as_ref().unwrap().diff_ids.clone().unwrap();
    let mut layer = Vec::new();
    let blob = m.content().open_blob(&r.layers[0].digest).unwrap();
    std::io::copy(&mut flate2::read::GzDecoder::new(blob), &mut layer).unwrap();
    assert_eq!(diff_ids, [Digest::of_bytes(&layer)]);
    assert_eq!(config.description, "sample volume plugin");

    // The rootfs (its one layer, or its flattened tree) equals the
    // context's, hardlink and symlink included.
    assert_eq!(tree(&m.lowers(&r).unwrap()[0]), tree(&ctx.join("rootfs")));

    // Settings start from the config, as Docker fills them.
    assert_eq!(r.settings.env.as_deref(), Some(&["DEBUG=0".to_owned()][..]));
    assert_eq!(
        r.settings.mounts.as_ref().unwrap()[0].source.as_deref(),
        Some("/tmp")
    );

    // Same context, another name: the same digests (deterministic layers).
    let again = m
        .create("other:2", &ctx, &CreateOptions::default())
        .unwrap();
    assert_eq!(again.layers, r.layers);
    assert_eq!(again.config_digest, r.config_digest);
    assert_ne!(again.id, r.id);

    // A tar of the context gives the same plugin.
    let tar_path = tmp.path().join("ctx.tar");
    let status = std::process::Command::new("tar")
        .arg("-cf")
        .arg(&tar_path)
        .arg("-C")
        .arg(&ctx)
        .args(["config.json", "rootfs"])
        .status()
        .unwrap();
    assert!(status.success());
    let from_tar = m
        .create("fromtar", &tar_path, &CreateOptions::default())
        .unwrap();
    assert_eq!(from_tar.config.description, r.config.description);
    assert_eq!(
        tree(&m.lowers(&from_tar).unwrap()[0]),
        tree(&ctx.join("rootfs"))
    );
}

#[test]
fn lookups_by_name_id_and_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    context(&ctx, CONFIG);
    let m = Manager::open(&tmp.path().join("root")).unwrap();
    let a = m
        .create(
            "reg.example:5000/team/a:1.0",
            &ctx,
            &CreateOptions::default(),
        )
        .unwrap();
    let b = m.create("b", &ctx, &CreateOptions::default()).unwrap();
    assert_eq!(m.get("reg.example:5000/team/a:1.0").unwrap().id, a.id);
    assert_eq!(m.get("b").unwrap().id, b.id);
    assert_eq!(m.get("b:latest").unwrap().id, b.id);
    assert_eq!(m.get("docker.io/library/b:latest").unwrap().id, b.id);
    assert_eq!(m.get(&a.id).unwrap().id, a.id);
    assert_eq!(m.get(&a.id[..10]).unwrap().id, a.id);
    assert!(matches!(m.get("nope"), Err(Error::NotFound(_))));
    assert!(matches!(m.get("b:2"), Err(Error::NotFound(_))));
    let names: Vec<String> = m
        .list()
        .unwrap()
        .iter()
        .map(pluginctl_manager::Record::familiar_name)
        .collect();
    assert_eq!(names, ["b:latest", "reg.example:5000/team/a:1.0"]);
    let err = m.create("b", &ctx, &CreateOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Exists(_)), "{err}");
    assert!(err.to_string().contains("b:latest"), "{err}");

    // Ambiguous prefixes list the candidates (make one by brute force over
    // single hex digits: with several plugins some first digit repeats, or
    // use the empty-ish two-character prefix of a fresh pair).
    let mut ids = vec![a.id.clone(), b.id.clone()];
    let mut n = 0;
    while !ids
        .iter()
        .any(|x| ids.iter().filter(|y| y[..2] == x[..2]).count() > 1)
    {
        n += 1;
        ids.push(
            m.create(&format!("p{n}"), &ctx, &CreateOptions::default())
                .unwrap()
                .id,
        );
    }
    let dup = ids
        .iter()
        .find(|x| ids.iter().filter(|y| y[..2] == x[..2]).count() > 1)
        .unwrap();
    let err = m.get(&dup[..2]).unwrap_err();
    assert!(matches!(err, Error::Ambiguous { .. }), "{err}");

    // A prefix of any length names a plugin when it is unique (as Docker's
    // resolvePluginID); a name wins over a prefix ("b" is a plugin here).
    for id in &ids {
        let first = &id[..1];
        if first == "b" {
            continue;
        }
        let sharing = ids.iter().filter(|x| x.starts_with(first)).count();
        match m.get(first) {
            Ok(found) => assert!(sharing == 1 && found.id == *id, "{first}"),
            Err(err) => assert!(
                sharing > 1 && matches!(err, Error::Ambiguous { .. }),
                "{first}: {err}"
            ),
        }
    }
}

#[test]
fn bad_input_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let m = Manager::open(&root).unwrap();
    let ok = tmp.path().join("ok");
    context(&ok, CONFIG);
    m.create("keep", &ok, &CreateOptions::default()).unwrap();
    let before_dirs = plugin_dirs(&root);
    let before_blobs = m.content().list().unwrap().len();

    let mut cases: Vec<(&str, Make, &str)> = vec![
        (
            "no-config",
            Box::new(|d: &Path| {
                context(d, CONFIG);
                std::fs::remove_file(d.join("config.json")).unwrap();
            }),
            "config.json",
        ),
        (
            "no-rootfs",
            Box::new(|d: &Path| {
                std::fs::create_dir_all(d).unwrap();
                std::fs::write(d.join("config.json"), CONFIG).unwrap();
            }),
            "rootfs",
        ),
        (
            "bad-json",
            Box::new(|d: &Path| context(d, "{\"description\": ")),
            "config.json: invalid plugin config: EOF while parsing a value at line 1 column 16",
        ),
        (
            "trailing",
            Box::new(|d: &Path| context(d, &format!("{CONFIG} garbage"))),
            "config.json: invalid plugin config: trailing characters at line 9 column 3",
        ),
        (
            "bom",
            Box::new(|d: &Path| context(d, &format!("\u{feff}{CONFIG}"))),
            "config.json: invalid plugin config: it starts with a UTF-8 byte order mark",
        ),
        (
            "type-without-prefix",
            Box::new(|d: &Path| {
                context(
                    d,
                    r#"{"interface":{"types":["volumedriver/1.0"],"socket":"s.sock"}}"#,
                );
            }),
            "config.json: invalid plugin config: invalid plugin interface type \"volumedriver/1.0\": expected PREFIX.CAPABILITY/VERSION",
        ),
        (
            "no-socket",
            Box::new(|d: &Path| {
                context(d, r#"{"interface":{"types":["docker.volumedriver/1.0"]}}"#);
            }),
            "config.json: invalid Interface.Socket \"\": the plugin config names no socket",
        ),
    ];
    // A socket is one file name in the plugin's socket directory: nothing
    // that could name a host socket the plugin does not own.
    let long = "s".repeat(pluginctl_manager::oci::PluginConfig::MAX_SOCKET_NAME + 1);
    for socket in [
        "../../esc.sock",
        "a/b.sock",
        "/run/x.sock",
        "..",
        ".",
        &long,
    ] {
        let socket = socket.to_owned();
        cases.push((
            "socket",
            Box::new(move |d: &Path| {
                let config = serde_json::json!({
                    "interface": {"types": ["docker.volumedriver/1.0"], "socket": &socket}
                });
                context(d, &config.to_string());
            }),
            "invalid Interface.Socket",
        ));
    }
    // A config.json over the limit is named as such (not as a layer).
    cases.push((
        "huge-config",
        Box::new(|d: &Path| {
            context(
                d,
                &format!("{{\"description\":\"{}\"}}", "x".repeat(2 << 20)),
            );
        }),
        "config.json is 2097170 bytes, over the plugin config limit of 1048576",
    ));
    // A config.json within its limit whose blob (Go's escaping, the
    // rootfs diff_ids) would not be: install could never read it.
    let padding = "<".repeat(pluginctl_manager::oci::PluginConfig::MAX_BYTES / 6 + 100);
    cases.push((
        "blob-over-limit",
        Box::new(move |d: &Path| {
            let config = serde_json::json!({
                "description": padding,
                "interface": {"types": ["docker.volumedriver/1.0"], "socket": "s.sock"}
            });
            context(d, &config.to_string());
        }),
        "over the limit of 1048576",
    ));
    for (i, (name, make, expect)) in cases.iter().enumerate() {
        let ctx = tmp.path().join(format!("{name}-{i}"));
        make(&ctx);
        let err = m.create(name, &ctx, &CreateOptions::default()).unwrap_err();
        assert!(err.to_string().contains(expect), "{name}: {err}");
        assert_eq!(plugin_dirs(&root), before_dirs, "{name}");
    }
    for bad in [
        "Upper",
        "a@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "",
        "a:b:c",
    ] {
        let err = m.create(bad, &ok, &CreateOptions::default()).unwrap_err();
        assert!(
            err.to_string().contains("invalid plugin name"),
            "{bad}: {err}"
        );
        assert_eq!(plugin_dirs(&root), before_dirs, "{bad}");
    }
    // Blobs written for a failed create are not referenced: gc takes them.
    m.gc().unwrap();
    assert_eq!(m.content().list().unwrap().len(), before_blobs);
    assert_eq!(m.list().unwrap().len(), 1);
}

#[test]
fn rm_removes_the_plugin_and_gc_keeps_shared_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    context(&ctx, CONFIG);
    let m = Manager::open(&tmp.path().join("root")).unwrap();
    // Names that are not hex: "a" would also be an ID prefix, and name
    // b when b's random ID starts with it (Docker's resolvePluginID).
    let a = m.create("pa", &ctx, &CreateOptions::default()).unwrap();
    let b = m.create("pb", &ctx, &CreateOptions::default()).unwrap();
    m.remove("pa", false).unwrap();
    assert!(matches!(m.get("pa"), Err(Error::NotFound(_))));
    assert!(!tmp.path().join("root/plugins").join(&a.id).exists());
    // b shares every blob: all still there.
    for d in b.roots() {
        assert!(m.content().contains(&d).unwrap(), "{d}");
    }
    m.remove(&b.id[..12], false).unwrap();
    assert!(m.content().list().unwrap().is_empty());
    assert!(m.list().unwrap().is_empty());
}

#[test]
fn a_crashed_create_is_rolled_back_by_the_next_command() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let ctx = tmp.path().join("ctx");
    context(&ctx, CONFIG);
    let m = Manager::open(&root).unwrap();
    let r = m.create("a", &ctx, &CreateOptions::default()).unwrap();
    drop(m);
    // What a kill can leave: an incomplete record, a directory without a
    // record, a half-extracted rootfs, staging in tmp/.
    let rec = root.join("plugins").join(&r.id).join("plugin.json");
    let text = std::fs::read_to_string(&rec).unwrap();
    let ghost = root.join("plugins").join("f".repeat(64));
    std::fs::create_dir_all(ghost.join("rootfs.staging/usr")).unwrap();
    std::fs::write(
        ghost.join("plugin.json"),
        text.replace(&r.id, &"f".repeat(64))
            .replace("\"incomplete\": false", "\"incomplete\": true")
            .replace("library/a:", "library/ghost:"),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("plugins").join("e".repeat(64)).join("rootfs")).unwrap();
    std::fs::create_dir_all(root.join("tmp/create-xyz/context/rootfs")).unwrap();
    // While any operation is in flight (here: held by this test), nothing
    // is rolled back: it might be that operation's work.
    let held = pluginctl_manager::store::Layout::open(&root)
        .unwrap()
        .operation()
        .unwrap();
    let m = Manager::open(&root).unwrap();
    assert_eq!(plugin_dirs(&root).len(), 4);
    drop(held);
    let m2 = Manager::open(&root).unwrap();
    assert_eq!(plugin_dirs(&root), [format!("plugins/{}", r.id)]);
    drop(m2);
    assert_eq!(m.list().unwrap().len(), 1);
    assert_eq!(m.get("a").unwrap().id, r.id);
}

#[test]
fn concurrent_creates_and_lists_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let ctx = tmp.path().join("ctx");
    context(&ctx, CONFIG);
    Manager::open(&root).unwrap();
    std::thread::scope(|s| {
        for t in 0..3 {
            let (root, ctx) = (&root, &ctx);
            s.spawn(move || {
                let m = Manager::open(root).unwrap();
                for i in 0..3 {
                    m.create(&format!("t{t}-{i}"), ctx, &CreateOptions::default())
                        .unwrap();
                    let _ = m.list().unwrap();
                }
            });
        }
        // Two racing creates of one name: exactly one wins.
        let (root, ctx) = (&root, &ctx);
        let racers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(move || {
                    Manager::open(root)
                        .unwrap()
                        .create("same", ctx, &CreateOptions::default())
                        .is_ok()
                })
            })
            .collect();
        let wins = racers
            .into_iter()
            .filter_map(|h| h.join().unwrap().then_some(()))
            .count();
        assert_eq!(wins, 1);
    });
    let m = Manager::open(&root).unwrap();
    let names: Vec<String> = m
        .list()
        .unwrap()
        .iter()
        .map(pluginctl_manager::Record::familiar_name)
        .collect();
    assert_eq!(names.len(), 10, "{names:?}");
    assert_eq!(plugin_dirs(&root).len(), 10);
}

#[test]
fn gc_all_takes_every_ingest_nobody_holds() {
    use std::io::Write as _;
    let tmp = tempfile::tempdir().unwrap();
    let m = Manager::open(&tmp.path().join("root")).unwrap();
    let mut idle = m.content().writer("pull-idle").unwrap();
    idle.write_all(b"half a layer").unwrap();
    idle.flush().unwrap();
    drop(idle);
    let mut held = m.content().writer("pull-held").unwrap();
    held.write_all(b"being written").unwrap();
    held.flush().unwrap();
    let refs = |m: &Manager| -> Vec<String> {
        m.content()
            .ingests()
            .unwrap()
            .into_iter()
            .map(|s| s.reference)
            .collect()
    };
    // A fresh download may be resumed: plain gc keeps it.
    assert_eq!(m.gc().unwrap().ingests, 0);
    assert_eq!(refs(&m), ["pull-held", "pull-idle"]);
    // gc_all takes it, but never one a writer holds.
    let s = m.gc_all().unwrap();
    assert_eq!(s.ingests, 1);
    assert_eq!(refs(&m), ["pull-held"]);
    drop(held);
    assert_eq!(m.gc_all().unwrap().ingests, 1);
    assert!(refs(&m).is_empty());
}
