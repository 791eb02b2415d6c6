//! Applying layers: metadata, hostile archives, and OCI whiteout semantics.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;

use pluginctl_rootfs::extract::{Options, apply_layer, apply_layers};
use pluginctl_testkit::{layer, tree, walk};

/// A sandbox: `<tmp>/root` is the target; `<tmp>/outside` holds a file that
/// no layer may touch.
struct Sandbox {
    tmp: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("root")).unwrap();
        fs::create_dir(tmp.path().join("outside")).unwrap();
        fs::write(tmp.path().join("outside/secret"), b"keep me").unwrap();
        Sandbox { tmp }
    }

    fn root(&self) -> PathBuf {
        self.tmp.path().join("root")
    }

    /// Every path under the sandbox but outside the root, with its content.
    fn outside(&self) -> Vec<String> {
        let mut v = Vec::new();
        walk(self.tmp.path(), self.tmp.path(), &mut |rel, meta, path| {
            if !rel.starts_with("root/") && rel != "root" {
                let content = if meta.is_file() {
                    fs::read(path).unwrap()
                } else {
                    Vec::new()
                };
                v.push(format!(
                    "{rel} {:o} {}",
                    meta.mode(),
                    String::from_utf8_lossy(&content)
                ));
            }
        });
        v
    }

    fn tree(&self) -> String {
        tree(&self.root())
    }
}

fn apply(sb: &Sandbox, spec: &str) -> Result<(), String> {
    apply_layer(&sb.root(), &layer(spec)[..], &Options::default())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn apply_all(specs: &[&str]) -> String {
    let sb = Sandbox::new();
    let layers: Vec<Vec<u8>> = specs.iter().map(|s| layer(s)).collect();
    apply_layers(
        &sb.root(),
        layers.iter().map(|l| &l[..]),
        &Options::default(),
    )
    .unwrap();
    sb.tree()
}

#[test]
fn files_dirs_links_and_metadata() {
    let sb = Sandbox::new();
    let stats = apply_layer(
        &sb.root(),
        &layer(
            "dir  bin/ mode=755 mtime=1000
             file bin/tool \"#!/bin/sh\" mode=4755 uid=1000 gid=1000 mtime=2000
             link bin/sh -> /bin/busybox
             hard bin/tool2 => bin/tool
             dir  tmp/ mode=1777
             fifo run/pipe mode=600
             dir  ro/ mode=555 mtime=3000
             file ro/inside \"x\" mode=444
             file attrs \"a\" xattr.user.pluginctl=yes",
        )[..],
        &Options::default(),
    )
    .unwrap();
    assert_eq!(stats.entries, 9);
    assert_eq!(stats.files, 3);
    assert_eq!(
        sb.tree(),
        "f attrs 644 a
d bin 755
l bin/sh -> /bin/busybox
f bin/tool 4755 #!/bin/sh
f bin/tool2 4755 #!/bin/sh =bin/tool
d ro 555
f ro/inside 444 x
d run 755
p run/pipe 600
d tmp 1777"
    );
    let root = sb.root();
    let tool = fs::metadata(root.join("bin/tool")).unwrap();
    assert_eq!(tool.mtime(), 2000);
    assert_eq!(
        tool.ino(),
        fs::metadata(root.join("bin/tool2")).unwrap().ino()
    );
    if rustix::process::geteuid().is_root() {
        assert_eq!((tool.uid(), tool.gid()), (1000, 1000));
    }
    // Directory times survive the children written into them.
    assert_eq!(fs::metadata(root.join("ro")).unwrap().mtime(), 3000);
    assert_eq!(fs::metadata(root.join("bin")).unwrap().mtime(), 1000);
    match rustix::fs::getxattr(root.join("attrs"), "user.pluginctl", &mut [0u8; 16]) {
        Ok(n) => assert_eq!(n, 3),
        // Some file systems (tmpfs before 6.6) lack user xattrs.
        Err(e) => assert_eq!(e, rustix::io::Errno::OPNOTSUPP),
    }
    assert_eq!(sb.outside(), Sandbox::new().outside());
}

/// Each hostile layer must fail with an error naming the entry, or land
/// entirely inside the root; in both cases nothing outside changes.
fn hostile(name: &str, spec: &str, expect: Result<&str, &str>) {
    let sb = Sandbox::new();
    let before = sb.outside();
    let got = apply(&sb, spec);
    match (&got, expect) {
        (Err(e), Err(want)) => assert_eq!(e, want, "{name}"),
        (Ok(()), Ok(want_tree)) => assert_eq!(sb.tree(), want_tree, "{name}"),
        _ => panic!("{name}: got {got:?}, expected {expect:?}"),
    }
    assert_eq!(
        sb.outside(),
        before,
        "{name}: something outside the root changed"
    );
}

#[test]
fn breakouts_are_refused_or_confined() {
    hostile(
        "dot-dot",
        "file ../escape \"x\"",
        Err("entry \"../escape\": its path leaves the root through '..'"),
    );
    hostile(
        "nested dot-dot",
        "file a/../../escape \"x\"",
        Err("entry \"a/../../escape\": its path leaves the root through '..'"),
    );
    hostile(
        "absolute name",
        "file /abs/file \"x\"",
        Ok("d abs 755\nf abs/file 644 x"),
    );
    hostile("dot-dot inside", "file a/../b \"x\"", Ok("f b 644 x"));
    hostile(
        "symlink up and out, then a file through it: clamped at the root",
        "link up -> ../../../../..\nfile up/outside/secret \"pwned\"",
        Ok("d outside 755\nf outside/secret 644 pwned\nl up -> ../../../../.."),
    );
    hostile(
        "relative symlink resolved inside the root",
        "dir outside/\nlink up -> ../../..\nfile up/outside/new \"in\"",
        Ok("d outside 755\nf outside/new 644 in\nl up -> ../../.."),
    );
    hostile(
        "absolute symlink parent is resolved inside the root",
        "dir etc/\nlink abs -> /etc\nfile abs/passwd \"in\"",
        Ok("l abs -> /etc\nd etc 755\nf etc/passwd 644 in"),
    );
    hostile(
        "symlink to the sandbox's outside directory by absolute path",
        &format!("link s -> {}\nfile s/secret \"pwned\"", "/tmp"),
        Err("entry \"s/secret\": a parent of it is a symlink to a missing directory"),
    );
    hostile(
        "hardlink out",
        "hard h => ../outside/secret",
        Err("entry \"h\": its hardlink target leaves the root"),
    );
    hostile(
        "hardlink absolute",
        "hard h => /etc/passwd",
        Err("entry \"h\": hardlink target \"/etc/passwd\" is not extracted"),
    );
    hostile(
        "hardlink to a later entry",
        "hard h => f\nfile f \"x\"",
        Err("entry \"h\": hardlink target \"f\" is not extracted"),
    );
    hostile(
        "hardlink through a symlinked parent stays inside",
        "dir d/\nfile d/f \"x\"\nlink s -> /d\nhard h => s/f",
        Ok("d d 755\nf d/f 644 x\nf h 644 x =d/f\nl s -> /d"),
    );
    hostile(
        "hardlink to a symlink links the symlink",
        "link s -> /etc/shadow\nhard h => s",
        Ok("l h -> /etc/shadow\nl s -> /etc/shadow"),
    );
    hostile(
        "hardlink to a directory",
        "dir d/\nhard h => d",
        Err("entry \"h\": hardlink target is a directory"),
    );
    hostile(
        "whiteout of the parent",
        "file .wh.. \"\"",
        Err(
            "entry \".wh..\": a whiteout must name an entry, not '.', '..' or the directory itself",
        ),
    );
    hostile(
        "whiteout of dot-dot",
        "file a/.wh... \"\"",
        Err(
            "entry \"a/.wh...\": a whiteout must name an entry, not '.', '..' or the directory itself",
        ),
    );
    hostile(
        "whiteout of the root",
        "file .wh. \"\"",
        Err("entry \".wh.\": a whiteout must name an entry, not '.', '..' or the directory itself"),
    );
    hostile(
        "whiteout through dot-dot",
        "wh ../outside/secret",
        Err("entry \"../outside/.wh.secret\": its path leaves the root through '..'"),
    );
    hostile(
        "file as the root",
        "file ./ \"x\"",
        Err("entry \"./\": a non-directory entry for the root itself"),
    );
    hostile(
        "root directory entry is accepted",
        "dir ./ mode=700\nfile a \"x\"",
        Ok("f a 644 x"),
    );
    hostile(
        "directory over a symlink replaces the symlink",
        "link d -> /tmp\ndir d/\nfile d/f \"in\"",
        Ok("d d 755\nf d/f 644 in"),
    );
    hostile(
        "file over a symlink replaces the symlink",
        "link f -> /etc/passwd\nfile f \"in\"",
        Ok("f f 644 in"),
    );
    hostile(
        "device nodes",
        "char dev/null 1,3",
        Err("entry \"dev/null\": device nodes are not allowed"),
    );
    hostile(
        "parent is a file",
        "file a \"x\"\nfile a/b \"y\"",
        Err("entry \"a/b\": a parent of it is not a directory"),
    );
    hostile(
        "symlink loop as a parent",
        "link l1 -> l2\nlink l2 -> l1\nfile l1/x \"y\"",
        Err("entry \"l1/x\": opening its parent directory"),
    );
}

#[test]
fn devices_are_created_when_allowed() {
    assert!(
        rustix::process::geteuid().is_root(),
        "creating device nodes needs root: run the tests as root (CI does)"
    );
    let sb = Sandbox::new();
    let opts = Options {
        allow_devices: true,
        ..Options::default()
    };
    apply_layer(&sb.root(), &layer("char null 1,3 mode=666")[..], &opts).unwrap();
    let meta = fs::symlink_metadata(sb.root().join("null")).unwrap();
    assert!(meta.file_type().is_char_device());
    assert_eq!(meta.rdev(), rustix::fs::makedev(1, 3));
}

#[test]
fn whiteout_semantics() {
    let base =
        "dir d/\nfile d/x \"x\"\nfile d/y \"y\"\ndir d/sub/\nfile d/sub/a \"a\"\nfile top \"t\"";
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "regular whiteout",
            &[base, "wh top\nwh d/x"],
            "d d 755\nd d/sub 755\nf d/sub/a 644 a\nf d/y 644 y",
        ),
        ("whole directory", &[base, "wh d"], "f top 644 t"),
        (
            "opaque",
            &[base, "opq d\nfile d/z \"z\""],
            "d d 755\nf d/z 644 z\nf top 644 t",
        ),
        (
            "opaque after a re-add in the same layer",
            &[base, "file d/z \"z\"\nopq d"],
            "d d 755\nf d/z 644 z\nf top 644 t",
        ),
        (
            "opaque keeps this layer's nested additions only",
            &[base, "file d/sub/new \"n\"\nopq d"],
            "d d 755\nd d/sub 755\nf d/sub/new 644 n\nf top 644 t",
        ),
        (
            "file becomes a directory",
            &[base, "dir top/\nfile top/in \"i\""],
            "d d 755\nd d/sub 755\nf d/sub/a 644 a\nf d/x 644 x\nf d/y 644 y\nd top 755\nf top/in 644 i",
        ),
        (
            "directory becomes a file",
            &[base, "file d \"now a file\""],
            "f d 644 now a file\nf top 644 t",
        ),
        (
            "directory whited out then re-created empty",
            &[base, "wh d\ndir d/"],
            "d d 755\nf top 644 t",
        ),
        (
            "directory re-created then whited out in the same layer",
            &[base, "dir d/\nwh d"],
            "d d 755\nf top 644 t",
        ),
        (
            "hardlink survives the removal of its target",
            &["file a \"shared\"\nhard b => a", "wh a"],
            "f b 644 shared",
        ),
        (
            "symlink replaced by a directory",
            &["link s -> x", "dir s/\nfile s/f \"f\""],
            "d s 755\nf s/f 644 f",
        ),
        (
            "re-add after delete",
            &["file a \"old\"", "wh a", "file a \"new\""],
            "f a 644 new",
        ),
        (
            "a whiteout does not hide its own layer's file",
            &["file a \"old\"", "file a \"new\"\nwh a"],
            "f a 644 new",
        ),
        (
            "whiteout of something absent",
            &["file a \"a\"", "wh nothing\nwh deep/nothing"],
            "f a 644 a",
        ),
        (
            "a .wh. directory is a whiteout, as Docker treats it",
            &["file a \"a\"\nfile b \"b\"", "dir .wh.a/"],
            "f b 644 b",
        ),
        (
            "AUFS metadata is skipped",
            &[
                "file a \"a\"",
                "dir .wh..wh.plnk/\nfile .wh..wh.plnk/123.4 \"x\"\nfile .wh..wh.aufs \"\"",
            ],
            "f a 644 a",
        ),
    ];
    for (name, layers, want) in cases {
        assert_eq!(apply_all(layers), *want, "{name}");
    }
}

#[test]
fn compressed_layers_apply() {
    let tar = layer("file a \"gz\"");
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, &tar).unwrap();
        e.finish().unwrap()
    };
    let sb = Sandbox::new();
    apply_layer(&sb.root(), &gz[..], &Options::default()).unwrap();
    let zst = zstd::encode_all(&layer("file b \"zst\"")[..], 3).unwrap();
    apply_layer(&sb.root(), &zst[..], &Options::default()).unwrap();
    assert_eq!(sb.tree(), "f a 644 gz\nf b 644 zst");
}
