//! Plugins on the layer store, through the binary (root: real overlay
//! mounts): layers shared by ChainID, `layers ls|inspect|diff|mount|umount`,
//! `df`, `check`; a three-layer plugin whose mounted chain equals its
//! flattening, and an upgrade that applies one layer; a 300-layer plugin
//! installed and enabled; junk layers refused with nothing left; the
//! flat driver (asked for, and chosen without root); a root written by the
//! release before the layer store.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use common::*;
use pluginctl_oci::{Descriptor, Digest, Manifest, MediaType};
use pluginctl_testkit::http::{Server, serve_image};

/// Layers as a registry serves them: (media type, bytes).
type Layers = Vec<(MediaType, Vec<u8>)>;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, bytes).unwrap();
    gz.finish().unwrap()
}

/// An in-process registry serving one plugin: `config` with these
/// `diff_ids`, and `layers` as (media type, bytes).
fn serve(mut config: serde_json::Value, diff_ids: &[String], layers: Layers) -> Server {
    config["rootfs"] = serde_json::json!({"type": "layers", "diff_ids": diff_ids});
    let config = config.to_string().into_bytes();
    let config_desc = Descriptor::of_bytes(MediaType::Plugin, &config);
    let mut blobs = HashMap::new();
    blobs.insert(config_desc.digest.to_string(), config);
    let mut descs = Vec::new();
    for (t, b) in layers {
        let d = Descriptor::of_bytes(t, &b);
        blobs.insert(d.digest.to_string(), b);
        descs.push(d);
    }
    let m = Manifest::docker(config_desc, descs);
    serve_image(m.to_vec(), m.media_type.as_ref().unwrap().as_str(), blobs)
}

/// A plugin of these layer tars, gzipped, with their true diff_ids.
fn serve_tars(config: serde_json::Value, tars: &[Vec<u8>]) -> Server {
    let ids: Vec<String> = tars
        .iter()
        .map(|t| Digest::of_bytes(t).to_string())
        .collect();
    let layers = tars
        .iter()
        .map(|t| (MediaType::DockerLayerGzip, gzip(t)))
        .collect();
    serve(config, &ids, layers)
}

fn volume_config() -> serde_json::Value {
    serde_json::json!({
        "description": "layered",
        "entrypoint": ["/volume-plugin"],
        "interface": {"types": ["docker.volumedriver/1.0"], "socket": "sample.sock"},
        "propagatedMount": "/data",
        "env": [{"name": "VOLUME_ROOT", "value": "/data"}],
    })
}

/// The layer store's full IDs (`layers ls -q --no-trunc`).
fn layer_ids(root: &Path) -> Vec<String> {
    ok(&pluginctl(root)
        .args(["layers", "ls", "-q", "--no-trunc"])
        .output()
        .unwrap())
    .lines()
    .map(str::to_owned)
    .collect()
}

fn layer_dirs(root: &Path) -> usize {
    std::fs::read_dir(root.join("layers")).map_or(0, |d| {
        d.filter(|e| {
            let e = e.as_ref().unwrap();
            e.file_type().unwrap().is_dir() && e.file_name() != "empty"
        })
        .count()
    })
}

fn id_of(root: &Path, name: &str) -> String {
    ok(&pluginctl(root)
        .args(["inspect", "--format", "{{.Id}}", name])
        .output()
        .unwrap())
    .trim()
    .to_owned()
}

#[test]
fn plugins_share_a_layer_that_rebuilds_its_exact_tar() {
    assert!(
        is_root(),
        "overlay mounts need root: run the tests as root (CI does)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let ctx = tmp.path().join("ctx");
    sample_context(&ctx);
    std::fs::create_dir_all(ctx.join("rootfs/etc")).unwrap();
    std::fs::write(ctx.join("rootfs/etc/conf"), "a=1\n").unwrap();
    for name in ["a:1", "b:1"] {
        ok(&pluginctl(&root)
            .args(["create", name])
            .arg(&ctx)
            .output()
            .unwrap());
    }
    // One layer, both plugins on it, no flattened copy.
    let ids = layer_ids(&root);
    assert_eq!(ids.len(), 1, "{ids:?}");
    let listed = ok(&pluginctl(&root).args(["layers", "ls"]).output().unwrap());
    assert!(listed.contains("a:1,b:1"), "{listed}");
    let a = id_of(&root, "a:1");
    assert!(!root.join("plugins").join(&a).join("rootfs").exists());
    assert_eq!(chain_of(&root, &a).as_deref(), Some(ids[0].as_str()));
    assert_eq!(
        tree(rootfs_view(&root, &a).path()),
        tree(&ctx.join("rootfs"))
    );
    let df = ok(&pluginctl(&root).arg("df").output().unwrap());
    assert!(df.starts_with("Storage driver: overlay"), "{df}");
    assert!(df.contains("\nLayers "), "{df}");
    let dfv = ok(&pluginctl(&root).args(["df", "-v"]).output().unwrap());
    assert!(
        dfv.contains("SHARED") && dfv.contains("a:1") && dfv.contains("b:1"),
        "{dfv}"
    );

    // `diff`: the layer's exact tar (its digest is the diff_id), by ID or
    // by the compressed digest it was applied from, plain or compressed.
    let inspect: serde_json::Value = serde_json::from_str(&ok(&pluginctl(&root)
        .args(["layers", "inspect", &ids[0][..19]])
        .output()
        .unwrap()))
    .unwrap();
    let diff_id = inspect[0]["diff_id"].as_str().unwrap().to_owned();
    let blob = inspect[0]["compressed"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = tmp.path().join("layer.tar");
    ok(&pluginctl(&root)
        .args(["layers", "diff", &ids[0], "-o"])
        .arg(&out)
        .output()
        .unwrap());
    let tar = std::fs::read(&out).unwrap();
    assert_eq!(Digest::of_bytes(&tar).to_string(), diff_id);
    let piped = pluginctl(&root)
        .args(["layers", "diff", &diff_id])
        .output()
        .unwrap();
    assert!(piped.status.success());
    assert_eq!(piped.stdout, tar);
    let gz = tmp.path().join("layer.tar.gz");
    ok(&pluginctl(&root)
        .args(["layers", "diff", &blob, "--compress", "gzip", "-o"])
        .arg(&gz)
        .output()
        .unwrap());
    let mut back = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap()),
        &mut back,
    )
    .unwrap();
    assert_eq!(back, tar);

    // A file changed under the store: diff refuses naming it and writes
    // nothing; check names it for both plugins.
    let conf = root
        .join("layers")
        .join(ids[0].trim_start_matches("sha256:"))
        .join("diff/etc/conf");
    std::fs::write(&conf, "a=2\n").unwrap();
    let bad = tmp.path().join("bad.tar");
    let err = fails(
        &pluginctl(&root)
            .args(["layers", "diff", &ids[0], "-o"])
            .arg(&bad)
            .output()
            .unwrap(),
    );
    assert!(err.contains("etc/conf"), "{err}");
    assert!(!bad.exists());
    let out = pluginctl(&root).arg("check").output().unwrap();
    fails(&out);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.matches("changed etc/conf").count(), 2, "{stdout}");
    std::fs::write(&conf, "a=1\n").unwrap();
    ok(&pluginctl(&root).arg("check").output().unwrap());

    // Mount counts: twice held, once dropped, still mounted.
    let exec = tmp.path().join("exec");
    let target = tmp.path().join("view");
    let layers = |args: &[&str]| {
        let mut c = pluginctl(&root);
        c.arg("--exec-root").arg(&exec).arg("layers").args(args);
        c
    };
    let t = target.to_str().unwrap();
    assert!(ok(&layers(&["mount", &ids[0], t]).output().unwrap()).contains("1 holder"));
    assert!(ok(&layers(&["mount", &ids[0], t]).output().unwrap()).contains("2 holders"));
    assert!(ok(&layers(&["umount", t]).output().unwrap()).contains("still held by 1"));
    assert_eq!(std::fs::read(target.join("etc/conf")).unwrap(), b"a=1\n");
    assert!(ok(&layers(&["umount", t]).output().unwrap()).contains("unmounted"));
    assert!(!target.join("etc/conf").exists());

    // rm keeps what the other plugin uses, then the last rm frees it.
    ok(&pluginctl(&root).args(["rm", "a:1"]).output().unwrap());
    assert_eq!(layer_dirs(&root), 1);
    ok(&pluginctl(&root).args(["rm", "b:1"]).output().unwrap());
    assert_eq!(layer_dirs(&root), 0);
    let left = ok(&pluginctl(&root)
        .args(["layers", "ls", "-q"])
        .output()
        .unwrap());
    assert!(left.is_empty(), "{left}");
}

fn three_layers(top: &str) -> Vec<Vec<u8>> {
    use pluginctl_testkit::layer;
    vec![
        layer(
            "dir etc/\nfile etc/a \"1\"\nfile etc/b \"1\"\ndir opt/\nfile opt/x \"x\"\ndir keep/\nfile keep/k \"k\"",
        ),
        layer(
            "dir etc/\nfile etc/a \"2\"\nfile etc/.wh.b \"\"\ndir opt/\nfile opt/.wh..wh..opq \"\"\nfile opt/y \"y\"\nfile new \"n\"",
        ),
        layer(&format!("file top \"{top}\"")),
    ]
}

#[test]
fn a_mounted_chain_equals_flattening_and_an_upgrade_applies_one_layer() {
    assert!(
        is_root(),
        "overlay mounts need root: run the tests as root (CI does)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let v1 = three_layers("t1");
    let v2 = three_layers("t2");
    let s1 = serve_tars(volume_config(), &v1);
    let s2 = serve_tars(volume_config(), &v2);
    let r1 = format!("{}/three/p:1", s1.host());
    let r2 = format!("{}/three/p:2", s2.host());
    ok(&pluginctl(&root)
        .args([
            "install",
            "--disable",
            "--grant-all-permissions",
            "--alias",
            "p",
            &r1,
        ])
        .output()
        .unwrap());
    // What flattening the same layers gives.
    let files: Vec<_> = v1
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let p = tmp.path().join(format!("l{i}.tar"));
            std::fs::write(&p, t).unwrap();
            p
        })
        .collect();
    let flat = tmp.path().join("flat");
    ok(&Command::new(bin())
        .args(["flatten", "--format", "dir", "-o"])
        .arg(&flat)
        .args(&files)
        .output()
        .unwrap());
    let id = id_of(&root, "p");
    {
        let view = rootfs_view(&root, &id);
        assert_eq!(tree(view.path()), tree(&flat));
        assert!(!view.path().join("etc/b").exists() && !view.path().join("opt/x").exists());
        assert_eq!(std::fs::read(view.path().join("etc/a")).unwrap(), b"2");
    }
    ok(&pluginctl(&root).arg("check").output().unwrap());
    let before: serde_json::Value = serde_json::from_str(&ok(&pluginctl(&root)
        .args(["layers", "inspect"])
        .args(layer_ids(&root))
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(before.as_array().unwrap().len(), 3);

    // The upgrade shares the two lower layers: one layer is applied.
    ok(&pluginctl(&root)
        .args([
            "upgrade",
            "--skip-remote-check",
            "--grant-all-permissions",
            "p",
            &r2,
        ])
        .output()
        .unwrap());
    let ids = layer_ids(&root);
    assert_eq!(ids.len(), 4, "{ids:?}");
    for old in before.as_array().unwrap() {
        let again: serde_json::Value = serde_json::from_str(&ok(&pluginctl(&root)
            .args(["layers", "inspect", old["id"].as_str().unwrap()])
            .output()
            .unwrap()))
        .unwrap();
        assert_eq!(again[0]["created"], old["created"], "not applied again");
    }
    assert_eq!(
        std::fs::read(rootfs_view(&root, &id).path().join("top")).unwrap(),
        b"t2"
    );
    // gc takes the old top layer; the shared ones stay.
    ok(&pluginctl(&root).arg("gc").output().unwrap());
    assert_eq!(layer_dirs(&root), 3);

    // A plugin on the flat driver moves onto the layer store when
    // upgraded; its layers are there already, so nothing is applied.
    ok(&pluginctl(&root)
        .args([
            "--storage-driver",
            "flat",
            "install",
            "--disable",
            "--grant-all-permissions",
            "--alias",
            "q",
            &r1,
        ])
        .output()
        .unwrap());
    let q = id_of(&root, "q");
    assert!(chain_of(&root, &q).is_none());
    assert!(root.join("plugins").join(&q).join("rootfs/top").is_file());
    ok(&pluginctl(&root)
        .args([
            "upgrade",
            "--skip-remote-check",
            "--grant-all-permissions",
            "q",
            &r2,
        ])
        .output()
        .unwrap());
    assert!(chain_of(&root, &q).is_some());
    assert!(!root.join("plugins").join(&q).join("rootfs").exists());
    assert_eq!(layer_dirs(&root), 3);
    let record =
        std::fs::read_to_string(root.join("plugins").join(&q).join("plugin.json")).unwrap();
    assert!(record.contains("\"format\": 2"), "{record}");
}

#[test]
fn a_300_layer_plugin_installs_enables_and_shows_every_layer() {
    assert!(
        is_root(),
        "runc and overlay need root: run the tests as root (CI does)"
    );
    let tmp = tempfile::Builder::new()
        .prefix("p300")
        .tempdir_in("/tmp")
        .unwrap();
    let root = tmp.path().join("root");
    let run = tmp.path().join("run");
    let _cleanup = Supervisors(run.clone());
    let plugin = std::fs::read(volume_plugin()).unwrap();
    let mut first = pluginctl_rootfs::tar::Writer::new(Vec::new());
    for d in ["data/", "run/", "run/docker/", "run/docker/plugins/", "l/"] {
        first
            .append(
                &pluginctl_rootfs::tar::Header::new(pluginctl_rootfs::tar::Kind::Dir, d.as_bytes()),
                &mut std::io::empty(),
            )
            .unwrap();
    }
    let mut h =
        pluginctl_rootfs::tar::Header::new(pluginctl_rootfs::tar::Kind::File, b"volume-plugin");
    h.size = plugin.len() as u64;
    h.mode = 0o755;
    first.append(&h, &mut &plugin[..]).unwrap();
    let mut tars = vec![first.finish().unwrap()];
    for i in 1..300 {
        tars.push(pluginctl_testkit::layer(&format!("file l/{i:03} \"{i}\"")));
    }
    let server = serve_tars(volume_config(), &tars);
    let reference = format!("{}/deep/p:1", server.host());
    ok(&pluginctl(&root)
        .arg("--exec-root")
        .arg(&run)
        .args([
            "-q",
            "install",
            "--grant-all-permissions",
            "--alias",
            "deep",
            &reference,
        ])
        .output()
        .unwrap());
    let layers = ok(&pluginctl(&root)
        .args(["layers", "ls", "-q"])
        .output()
        .unwrap());
    assert_eq!(layers.lines().count(), 300);
    // Enabled (install enables): its rootfs is the 300-layer chain.
    let id = id_of(&root, "deep");
    let merged = run.join(&id).join("rootfs");
    for i in 1..300 {
        assert_eq!(
            std::fs::read_to_string(merged.join(format!("l/{i:03}"))).unwrap(),
            i.to_string()
        );
    }
    let enabled = ok(&pluginctl(&root)
        .args(["inspect", "--format", "{{.Enabled}}", "deep"])
        .output()
        .unwrap());
    assert_eq!(enabled.trim(), "true");
    ok(&pluginctl(&root)
        .arg("--exec-root")
        .arg(&run)
        .args(["disable", "deep"])
        .output()
        .unwrap());
    ok(&pluginctl(&root).arg("check").output().unwrap());
}

#[test]
fn junk_layers_are_refused_naming_the_layer_and_leave_nothing() {
    assert!(
        is_root(),
        "the layer store needs root: run the tests as root (CI does)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let good = pluginctl_testkit::layer("file a \"a\"");
    let garbage = pluginctl_testkit::pattern(3, 100_000);
    let mut truncated = gzip(&good);
    truncated.truncate(truncated.len() / 2);
    let zstd_garbage = zstd::encode_all(&garbage[..], 3).unwrap();
    let escape = pluginctl_testkit::layer("link evil -> /etc\nfile evil/passwd \"x\"");
    let cases: Vec<(&str, Layers, String)> = vec![
        (
            "garbage",
            vec![(MediaType::DockerLayerGzip, garbage.clone())],
            Digest::of_bytes(&garbage).to_string(),
        ),
        (
            "gzip of garbage",
            vec![(MediaType::DockerLayerGzip, gzip(&garbage))],
            Digest::of_bytes(&garbage).to_string(),
        ),
        (
            "zstd of garbage",
            vec![(MediaType::OciLayerZstd, zstd_garbage)],
            Digest::of_bytes(&garbage).to_string(),
        ),
        (
            "truncated gzip",
            vec![(MediaType::DockerLayerGzip, truncated)],
            Digest::of_bytes(&good).to_string(),
        ),
        (
            "a lying diff_id",
            vec![(MediaType::DockerLayerGzip, gzip(&good))],
            Digest::of_bytes(b"other").to_string(),
        ),
        (
            "a link out of the rootfs",
            vec![(MediaType::DockerLayerGzip, gzip(&escape))],
            Digest::of_bytes(&escape).to_string(),
        ),
    ];
    for (what, layers, diff_id) in cases {
        let layer_digest = Digest::of_bytes(&layers[0].1).to_string();
        let server = serve(volume_config(), &[diff_id], layers);
        let reference = format!("{}/junk/p:1", server.host());
        let err = fails(
            &pluginctl(&root)
                .args([
                    "-q",
                    "install",
                    "--disable",
                    "--grant-all-permissions",
                    &reference,
                ])
                .output()
                .unwrap(),
        );
        assert!(err.contains(&layer_digest), "{what}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{what}: {err}");
        assert_eq!(layer_dirs(&root), 0, "{what}");
        let left = ok(&pluginctl(&root)
            .args(["layers", "ls", "-q"])
            .output()
            .unwrap());
        assert!(left.is_empty(), "{what}: {left}");
        assert_eq!(
            std::fs::read_dir(root.join("plugins")).unwrap().count(),
            0,
            "{what}"
        );
    }
    assert_ne!(std::fs::read("/etc/passwd").unwrap(), b"x");
}

#[test]
fn the_flat_driver_when_asked_for_and_without_root() {
    assert!(
        is_root(),
        "the test switches to an unprivileged user: run it as root (CI does)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    sample_context(&ctx);
    let root = tmp.path().join("root");
    ok(&pluginctl(&root)
        .args(["--storage-driver", "flat", "create", "f:1"])
        .arg(&ctx)
        .output()
        .unwrap());
    let id = id_of(&root, "f:1");
    assert!(chain_of(&root, &id).is_none());
    assert_eq!(
        tree(&root.join("plugins").join(&id).join("rootfs")),
        tree(&ctx.join("rootfs"))
    );
    let df = ok(&pluginctl(&root)
        .args(["--storage-driver", "flat", "df"])
        .output()
        .unwrap());
    assert!(df.starts_with("Storage driver: flat (asked for)"), "{df}");
    ok(&pluginctl(&root).arg("check").output().unwrap());
    let err = fails(
        &pluginctl(&root)
            .args(["--storage-driver", "zfs", "ls"])
            .output()
            .unwrap(),
    );
    assert!(err.contains("unknown storage driver \"zfs\""), "{err}");

    // Without root: flat, chosen and said.
    let home = tmp.path().join("nobody");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let chown = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&home)
        .arg(&ctx)
        .status()
        .unwrap();
    assert!(chown.success());
    let unprivileged = |args: &[&str]| {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin())
            .arg("--root")
            .arg(home.join("root"))
            .env("PLUGINCTL_HOSTS_DIR", "")
            .env("HOME", &home)
            .args(args);
        c
    };
    let out = unprivileged(&["create", "u:1", ctx.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("storage driver flat: not running as root"),
        "{err}"
    );
    let df = ok(&unprivileged(&["df"]).output().unwrap());
    assert!(
        df.starts_with("Storage driver: flat (not running as root)"),
        "{df}"
    );
    ok(&unprivileged(&["check"]).output().unwrap());
}

#[test]
fn a_root_of_the_previous_release_keeps_working() {
    assert!(
        is_root(),
        "the layer store needs root: run the tests as root (CI does)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/root-0.1.tar");
    let status = Command::new("tar")
        .arg("-xf")
        .arg(&fixture)
        .arg("-C")
        .arg(&root)
        .status()
        .unwrap();
    assert!(status.success());
    let ls = ok(&pluginctl(&root)
        .args(["ls", "--format", "{{.Name}} {{.Enabled}}"])
        .output()
        .unwrap());
    assert_eq!(ls, "old:1.0 false\n");
    let env = ok(&pluginctl(&root)
        .args(["inspect", "--format", "{{json .Settings.Env}}", "old:1.0"])
        .output()
        .unwrap());
    assert_eq!(env.trim(), r#"["DEBUG=1"]"#);
    let id = id_of(&root, "old:1.0");
    assert!(
        chain_of(&root, &id).is_none(),
        "read as it is, not migrated"
    );
    ok(&pluginctl(&root).arg("check").output().unwrap());
    let dfv = ok(&pluginctl(&root).args(["df", "-v"]).output().unwrap());
    assert!(dfv.contains("old:1.0") && dfv.contains("flat"), "{dfv}");
    assert_eq!(
        std::fs::read(root.join("plugins").join(&id).join("rootfs/etc/greeting")).unwrap(),
        b"hello\n"
    );
    // A new plugin beside it goes onto the layer store; gc keeps the old
    // one's blobs.
    let ctx = tmp.path().join("ctx");
    sample_context(&ctx);
    ok(&pluginctl(&root)
        .args(["create", "new:1"])
        .arg(&ctx)
        .output()
        .unwrap());
    assert!(chain_of(&root, &id_of(&root, "new:1")).is_some());
    ok(&pluginctl(&root).arg("gc").output().unwrap());
    ok(&pluginctl(&root)
        .args(["check", "old:1.0", "new:1"])
        .output()
        .unwrap());
    // Its record stays format 1 when changed: a release before this one
    // still reads it.
    ok(&pluginctl(&root)
        .args(["set", "old:1.0", "DEBUG=2"])
        .output()
        .unwrap());
    let record =
        std::fs::read_to_string(root.join("plugins").join(&id).join("plugin.json")).unwrap();
    assert!(record.contains("\"format\": 1"), "{record}");
    ok(&pluginctl(&root).args(["rm", "old:1.0"]).output().unwrap());
    assert!(!root.join("plugins").join(&id).exists());
    let ls = ok(&pluginctl(&root).args(["ls", "-q"]).output().unwrap());
    assert_eq!(ls.lines().count(), 1);
}
