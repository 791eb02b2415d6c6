//! `pluginctl flatten` end to end: layer files, docker-save tarballs (file
//! and stdin), OCI layouts; tar and directory output; bad input.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use pluginctl_oci::{Descriptor, Digest, Index, Manifest, MediaType};
use pluginctl_rootfs::extract::{Options, apply_layer, apply_layers};
use pluginctl_rootfs::tar::{Header, Kind, Writer};
use pluginctl_testkit::{layer, tree};

fn pluginctl() -> Command {
    let exe = std::env::current_exe().expect("path of the test binary");
    let bin: PathBuf = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("pluginctl");
    assert!(
        bin.is_file(),
        "{} is missing: cargo build -p pluginctl",
        bin.display()
    );
    Command::new(bin)
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = pluginctl()
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    child.wait_with_output().unwrap()
}

const L1: &str =
    "dir etc/\nfile etc/motd \"old\"\nfile etc/keep \"k\"\ndir bin/\nfile bin/tool \"t\" mode=4755";
const L2: &str = "wh etc/motd\nfile etc/new \"n\"\nhard bin/alias => bin/tool";

/// The tree of applying the layers one by one: what flatten must give.
fn expected(layers: &[Vec<u8>]) -> String {
    let d = tempfile::tempdir().unwrap();
    apply_layers(d.path(), layers.iter().map(|l| &l[..]), &Options::default()).unwrap();
    tree(d.path())
}

fn tree_of_tar(path: &Path) -> String {
    let d = tempfile::tempdir().unwrap();
    apply_layer(d.path(), fs::File::open(path).unwrap(), &Options::default()).unwrap();
    tree(d.path())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn layer_files_to_a_tar_and_to_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let layers = vec![layer(L1), gzip(&layer(L2))];
    let (a, b) = (tmp.path().join("l1.tar"), tmp.path().join("l2.tar.gz"));
    fs::write(&a, &layers[0]).unwrap();
    fs::write(&b, &layers[1]).unwrap();
    let out_tar = tmp.path().join("flat.tar");
    ok(&run(
        &[
            "flatten",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "-o",
            out_tar.to_str().unwrap(),
        ],
        None,
    ));
    let want = expected(&layers);
    assert!(want.contains("f bin/alias 4755 t"), "{want}");
    assert!(!want.contains("motd"));
    assert_eq!(tree_of_tar(&out_tar), want);
    let out_dir = tmp.path().join("rootfs");
    ok(&run(
        &[
            "flatten",
            "--format",
            "dir",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "-o",
            out_dir.to_str().unwrap(),
        ],
        None,
    ));
    assert_eq!(tree(&out_dir), want);
    // Nothing but the outputs is left beside them.
    let mut names: Vec<String> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["flat.tar", "l1.tar", "l2.tar.gz", "rootfs"]);
}

fn docker_save(layers: &[Vec<u8>]) -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    let mut names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let name = format!("{i:064x}/layer.tar");
        let mut h = Header::new(Kind::File, name.as_bytes());
        h.size = l.len() as u64;
        w.append(&h, &mut &l[..]).unwrap();
        names.push(format!("\"{name}\""));
    }
    let manifest = format!(
        "[{{\"Config\":\"c.json\",\"RepoTags\":[\"x:1\"],\"Layers\":[{}]}}]",
        names.join(",")
    );
    let mut h = Header::new(Kind::File, b"manifest.json");
    h.size = manifest.len() as u64;
    w.append(&h, &mut manifest.as_bytes()).unwrap();
    w.finish().unwrap()
}

#[test]
fn docker_save_from_a_file_and_from_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let layers = vec![layer(L1), layer(L2)];
    let save = docker_save(&layers);
    let input = tmp.path().join("image.tar");
    fs::write(&input, &save).unwrap();
    let out = tmp.path().join("a.tar");
    ok(&run(
        &[
            "flatten",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        None,
    ));
    assert_eq!(tree_of_tar(&out), expected(&layers));
    let piped = run(&["flatten", "-", "-o", "-"], Some(&save));
    ok(&piped);
    let via_stdout = tmp.path().join("b.tar");
    fs::write(&via_stdout, &piped.stdout).unwrap();
    assert_eq!(
        fs::read(&via_stdout).unwrap(),
        fs::read(&out).unwrap(),
        "same bytes either way"
    );
}

fn oci_layout(dir: &Path, layers: &[Vec<u8>], tag: &str) -> Vec<Digest> {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = Digest::of_bytes(bytes);
        fs::write(blobs.join(d.encoded()), bytes).unwrap();
        d
    };
    let mut descs = Vec::new();
    let mut digests = Vec::new();
    for l in layers {
        let gz = gzip(l);
        let d = put(&gz);
        digests.push(d.clone());
        descs.push(Descriptor::new(MediaType::OciLayerGzip, d, gz.len() as u64));
    }
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("\"{}\"", Digest::of_bytes(l)))
        .collect();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        diff_ids.join(",")
    );
    let config = config.as_bytes();
    let cd = put(config);
    let mut m = Manifest::docker(
        Descriptor::new(MediaType::OciConfig, cd, config.len() as u64),
        descs,
    );
    m.media_type = Some(MediaType::OciManifest);
    let mb = m.to_vec();
    let md = put(&mb);
    let mut entry = Descriptor::new(MediaType::OciManifest, md, mb.len() as u64);
    entry.annotations = Some(
        [(
            "org.opencontainers.image.ref.name".to_owned(),
            tag.to_owned(),
        )]
        .into(),
    );
    let index = Index::oci(vec![entry]);
    fs::write(dir.join("index.json"), index.to_vec()).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    digests
}

#[test]
fn oci_layout_by_tag_with_verification() {
    let tmp = tempfile::tempdir().unwrap();
    let layers = vec![layer(L1), layer(L2)];
    let dir = tmp.path().join("layout");
    let digests = oci_layout(&dir, &layers, "v1");
    let out = tmp.path().join("flat.tar");
    let spec = format!("oci:{}:v1", dir.display());
    ok(&run(&["flatten", &spec, "-o", out.to_str().unwrap()], None));
    assert_eq!(tree_of_tar(&out), expected(&layers));

    let missing = run(
        &["flatten", &format!("oci:{}:v2", dir.display()), "-o", "-"],
        None,
    );
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr),
        format!("pluginctl: {} has no image tagged v2\n", dir.display())
    );

    // A corrupt layer blob: an error naming it, and no output file.
    let blob = dir.join("blobs/sha256").join(digests[1].encoded());
    let mut bytes = fs::read(&blob).unwrap();
    let last = bytes.len() - 9;
    bytes[last] ^= 0xff; // inside the gzip trailer's CRC: still a valid-looking stream
    fs::write(&blob, &bytes).unwrap();
    let bad_out = tmp.path().join("bad.tar");
    let bad = run(&["flatten", &spec, "-o", bad_out.to_str().unwrap()], None);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.starts_with("pluginctl: ") && err.contains(digests[1].as_str()),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!bad_out.exists());
    let leftovers: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".pluginctl"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn bad_inputs_get_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.bin");
    fs::write(&junk, b"PK\x03\x04 not a layer").unwrap();
    let out = run(&["flatten", junk.to_str().unwrap(), "-o", "-"], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "pluginctl: unknown layer compression: it starts with 50 4b 03 04 20 6e 6f 74 (expected tar, gzip or zstd)\n"
    );
    let out = run(&["flatten", "/nonexistent/layer.tar", "-o", "-"], None);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "pluginctl: opening /nonexistent/layer.tar: No such file or directory (os error 2)\n"
    );
    let evil = tmp.path().join("evil.tar");
    fs::write(&evil, layer("file ../../escape \"x\"")).unwrap();
    let dest = tmp.path().join("out");
    let out = run(
        &[
            "flatten",
            "--format",
            "dir",
            evil.to_str().unwrap(),
            "-o",
            dest.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "pluginctl: entry \"../../escape\": its path leaves the root through '..'\n"
    );
    assert!(!dest.exists());
    let exists = run(
        &[
            "flatten",
            "--format",
            "dir",
            evil.to_str().unwrap(),
            "-o",
            tmp.path().to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(
        String::from_utf8_lossy(&exists.stderr),
        format!(
            "pluginctl: {} exists; flatten writes a new directory\n",
            tmp.path().display()
        )
    );
}

/// The integration tier's interop check: umoci (Debian's `umoci`, which
/// `cargo xtask test` installs) unpacks the same layout to the same tree.
#[test]
fn umoci_unpacks_the_same_tree() {
    let umoci = std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("umoci"))
                .find(|p| p.is_file())
        })
        .expect("umoci is not installed: run the tests with `cargo xtask test`, which installs it");
    let tmp = tempfile::tempdir().unwrap();
    let layers = vec![
        layer(
            "dir etc/\nfile etc/motd \"old\"\nfile etc/keep \"k\"\ndir bin/\nfile bin/tool \"t\" mode=4755\ndir var/\ndir var/cache/\nfile var/cache/a \"a\"\nlink bin/sh -> tool",
        ),
        layer(
            "wh etc/motd\nfile etc/new \"n\"\nhard bin/alias => bin/tool\nopq var/cache\nfile var/cache/b \"b\"",
        ),
        layer("file etc/motd \"back\"\nwh bin/sh\ndir opt/ mode=700"),
    ];
    let dir = tmp.path().join("layout");
    oci_layout(&dir, &layers, "v1");
    let ours = tmp.path().join("ours");
    ok(&run(
        &[
            "flatten",
            "--format",
            "dir",
            &format!("oci:{}:v1", dir.display()),
            "-o",
            ours.to_str().unwrap(),
        ],
        None,
    ));
    let bundle = tmp.path().join("bundle");
    let mut cmd = Command::new(umoci);
    cmd.arg("unpack");
    if !is_root() {
        cmd.arg("--rootless");
    }
    let out = cmd
        .arg("--image")
        .arg(format!("{}:v1", dir.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "umoci: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(tree(&ours), tree(&bundle.join("rootfs")));
    assert_eq!(tree(&ours), expected(&layers));
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}
