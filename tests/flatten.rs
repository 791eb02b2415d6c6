//! `pluginctl flatten` end to end: layer files, docker-save tarballs (file
//! and stdin), OCI layouts; tar and directory output; bad input.

mod common;

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
    if !common::is_root() {
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

fn write_gzip(path: &Path, tar: &[u8]) {
    fs::write(path, gzip(tar)).unwrap();
}

#[test]
fn a_compressed_docker_save_is_an_archive_and_is_never_mixed_with_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let layers = vec![layer(L1), layer(L2)];
    let save = tmp.path().join("save.tar");
    fs::write(&save, docker_save(&layers)).unwrap();
    let save_gz = tmp.path().join("save.tar.gz");
    write_gzip(&save_gz, &docker_save(&layers));
    let l1 = tmp.path().join("l1.tar.gz");
    fs::write(&l1, gzip(&layers[0])).unwrap();
    let out = tmp.path().join("out.tar");
    let o = out.to_str().unwrap();

    // docker load takes a gzipped save: so does flatten, as the image.
    ok(&run(&["flatten", save_gz.to_str().unwrap(), "-o", o], None));
    assert_eq!(tree_of_tar(&out), expected(&layers));
    ok(&run(
        &["flatten", "-", "-o", o],
        Some(&gzip(&docker_save(&layers))),
    ));
    assert_eq!(tree_of_tar(&out), expected(&layers));
    // A gzipped layer stays a layer.
    ok(&run(&["flatten", l1.to_str().unwrap(), "-o", o], None));
    assert_eq!(tree_of_tar(&out), expected(&layers[..1]));

    fs::remove_file(&out).unwrap();
    for (inputs, expect) in [
        (
            vec![save.to_str().unwrap(), l1.to_str().unwrap()],
            format!(
                "pluginctl: {} is a docker save archive; it is flattened alone, not among layer files\n",
                save.display()
            ),
        ),
        (
            vec![l1.to_str().unwrap(), save_gz.to_str().unwrap()],
            format!(
                "pluginctl: {} is a docker save archive; it is flattened alone, not among layer files\n",
                save_gz.display()
            ),
        ),
        (
            vec!["-", l1.to_str().unwrap()],
            "pluginctl: - (stdin) takes a docker save archive alone; name layer files by path\n"
                .to_owned(),
        ),
        (
            vec!["oci:./layout", l1.to_str().unwrap()],
            "pluginctl: oci:./layout: an OCI layout is flattened alone, not among layer files\n"
                .to_owned(),
        ),
    ] {
        let mut args = vec!["flatten"];
        args.extend(&inputs);
        args.extend(["-o", o]);
        let r = run(&args, None);
        assert_eq!(r.status.code(), Some(1), "{inputs:?}");
        assert_eq!(String::from_utf8_lossy(&r.stderr), expect);
        assert!(!out.exists(), "{inputs:?}");
    }
}

#[test]
fn errors_name_the_archive_and_the_output() {
    let tmp = tempfile::tempdir().unwrap();
    // A save whose layer is named by a digest it does not have.
    let body = layer(L1);
    let wrong = "0".repeat(64);
    let name = format!("blobs/sha256/{wrong}");
    let mut w = Writer::new(Vec::new());
    let mut h = Header::new(Kind::File, name.as_bytes());
    h.size = body.len() as u64;
    w.append(&h, &mut &body[..]).unwrap();
    let manifest = format!(r#"[{{"Config":"c.json","RepoTags":[],"Layers":["{name}"]}}]"#);
    let mut h = Header::new(Kind::File, b"manifest.json");
    h.size = manifest.len() as u64;
    w.append(&h, &mut manifest.as_bytes()).unwrap();
    let save = tmp.path().join("tampered.tar");
    fs::write(&save, w.finish().unwrap()).unwrap();
    let r = run(&["flatten", save.to_str().unwrap(), "-o", "-"], None);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        err.contains(&format!("layer {name} of {}", save.display()))
            && err.contains("expected sha256:")
            && err.lines().count() == 1,
        "{err}"
    );
    let r = run(
        &["flatten", "-", "-o", "-"],
        Some(&fs::read(&save).unwrap()),
    );
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains(&format!("layer {name} of stdin")), "{err}");

    // An output in a directory that does not exist is named as given.
    let l1 = tmp.path().join("l1.tar");
    fs::write(&l1, layer(L1)).unwrap();
    let target = tmp.path().join("nodir/x.tar");
    let r = run(
        &[
            "flatten",
            l1.to_str().unwrap(),
            "-o",
            target.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(
        String::from_utf8_lossy(&r.stderr),
        format!(
            "pluginctl: writing {}: No such file or directory (os error 2)\n",
            target.display()
        )
    );
}

/// A gzipped layer of three 48 MiB files: a few hundred milliseconds of
/// flattening, to interrupt.
fn big_layer(path: &Path) {
    let file = fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut w = Writer::new(gz);
    for i in 0..3u64 {
        let data = pluginctl_testkit::pattern(i, 48 << 20);
        let mut h = Header::new(Kind::File, format!("big{i}").as_bytes());
        h.size = data.len() as u64;
        w.append(&h, &mut &data[..]).unwrap();
    }
    w.finish().unwrap().finish().unwrap();
}

fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".pluginctl-"))
        .collect()
}

#[test]
fn an_interrupted_flatten_leaves_nothing_and_stale_files_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("big.tar.gz");
    big_layer(&input);
    let outdir = tmp.path().join("out");
    fs::create_dir(&outdir).unwrap();
    for format in ["tar", "dir"] {
        for delay_ms in [50, 120, 200] {
            let target = outdir.join(format!("flat-{format}-{delay_ms}"));
            let child = pluginctl()
                .args(["flatten", "--format", format, input.to_str().unwrap(), "-o"])
                .arg(&target)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            common::interrupt(child.id());
            let out = child.wait_with_output().unwrap();
            assert_eq!(
                out.status.code(),
                Some(130),
                "{format} {delay_ms} ms: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                leftovers(&outdir),
                Vec::<String>::new(),
                "{format} {delay_ms} ms"
            );
            assert!(!target.exists(), "{format} {delay_ms} ms");
        }
    }
    // What a killed flatten left (its process gone) goes on the next run;
    // what a live one is writing stays.
    let dead = ".pluginctl-flatten-4000000000-dead";
    fs::write(outdir.join(dead), b"partial").unwrap();
    fs::create_dir_all(outdir.join(format!("{dead}dir/etc"))).unwrap();
    let live = format!(".pluginctl-flatten-{}-live", std::process::id());
    fs::write(outdir.join(&live), b"in progress").unwrap();
    let small = tmp.path().join("l1.tar");
    fs::write(&small, layer(L1)).unwrap();
    ok(&run(
        &[
            "flatten",
            small.to_str().unwrap(),
            "-o",
            outdir.join("flat.tar").to_str().unwrap(),
        ],
        None,
    ));
    assert_eq!(leftovers(&outdir), [live]);
}
