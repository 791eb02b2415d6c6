//! The layer store on real files, as root (overlay-form whiteouts are
//! character devices and trusted.* attributes): apply, exact re-tar of
//! non-canonical tars, check, lookups, concurrency, crash leftovers, gc.

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::Path;
use std::sync::Arc;

use pluginctl_layers::{Compressed, Error, Store, chain_id};
use pluginctl_oci::Digest;

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn need_root() {
    assert!(
        is_root(),
        "the layer store tests need root (whiteouts in overlay form are 0:0 character devices); run them as root"
    );
}

/// A hand-made tar header block: exactly the bytes given, with a valid
/// checksum, so tests can make archives no tidy writer makes.
fn header(name: &[u8], kind: u8, size: u64, link: &[u8], uid: u32, gid: u32) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    let octal = |field: &mut [u8], v: u64| {
        let s = format!("{v:0width$o}\0", width = field.len() - 1);
        field.copy_from_slice(s.as_bytes());
    };
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], u64::from(uid));
    octal(&mut h[116..124], u64::from(gid));
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 1_700_000_000);
    h[156] = kind;
    h[157..157 + link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

fn padded(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    v.resize(data.len().div_ceil(512) * 512, 0);
    v
}

/// A layer with what real tars carry and tidy writers do not: a GNU long
/// name and long link, a PAX record, a non-UTF-8 name, a hardlink, a
/// symlink, whiteouts, odd owners, three end blocks and trailing bytes.
fn odd_layer() -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(header(b"./etc/", b'5', 0, b"", 0, 0));
    t.extend(header(b"./etc/motd", b'0', 5, b"", 1000, 2000));
    t.extend(padded(b"hello"));
    let long = format!("etc/{}", "d".repeat(150));
    t.extend(header(
        b"././@LongLink",
        b'L',
        long.len() as u64 + 1,
        b"",
        0,
        0,
    ));
    t.extend(padded(format!("{long}\0").as_bytes()));
    t.extend(header(&long.as_bytes()[..100], b'0', 600, b"", 0, 0));
    t.extend(padded(&[b'x'; 600]));
    t.extend(header(
        b"././@LongLink",
        b'K',
        long.len() as u64 + 1,
        b"",
        0,
        0,
    ));
    t.extend(padded(format!("{long}\0").as_bytes()));
    t.extend(header(b"etc/hard", b'1', 0, b"placeholder", 0, 0));
    let pax = b"31 path=etc/pax-named-file.txt\n";
    t.extend(header(b"PaxHeaders/x", b'x', pax.len() as u64, b"", 0, 0));
    t.extend(padded(pax));
    t.extend(header(b"etc/ignored-by-pax", b'0', 3, b"", 0, 0));
    t.extend(padded(b"pax"));
    t.extend(header(b"etc/caf\xe9", b'0', 2, b"", 7, 7));
    t.extend(padded(b"\xff\x00"));
    t.extend(header(b"etc/link", b'2', 0, b"motd", 0, 0));
    t.extend(header(b"etc/.wh.gone", b'0', 0, b"", 4242, 4242));
    t.extend(header(b"opaque/", b'5', 0, b"", 0, 0));
    t.extend(header(b"opaque/.wh..wh..opq", b'0', 0, b"", 0, 0));
    t.extend(header(b"empty", b'0', 0, b"", 0, 0));
    t.extend([0u8; 512 * 3]);
    t.extend(b"trailing bytes after the end blocks");
    t
}

/// Detaches a mount when dropped: a failing test leaves nothing mounted.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(self.0.as_path(), rustix::mount::UnmountFlags::DETACH);
    }
}

/// A blob that must not be read.
struct Untouchable;

impl Read for Untouchable {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        panic!("a present layer's blob was read");
    }
}

fn sha(bytes: &[u8]) -> Digest {
    Digest::of_bytes(bytes)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn apply_then_rebuild_the_exact_tar_of_an_odd_layer() {
    need_root();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("layers")).unwrap();
    let tar = odd_layer();
    let diff_id = sha(&tar);
    let gz = gzip(&tar);
    let compressed = Compressed {
        digest: sha(&gz),
        size: gz.len() as u64,
        compression: "gzip".into(),
    };
    let layer = store
        .apply(None, &diff_id, &gz[..], Some(&compressed))
        .unwrap();
    assert_eq!(
        layer.id, diff_id,
        "the first layer's ChainID is its diff_id"
    );
    assert_eq!(layer.size, tar.len() as u64);
    assert_eq!(layer.uids, [0, 7, 1000], "whiteouts' owners excluded");
    assert_eq!(layer.gids, [0, 7, 2000]);

    // Overlay form: the whiteout is a 0:0 character device, the opaque
    // directory is marked.
    let diff = store.diff_dir(&layer.id);
    let gone = std::fs::symlink_metadata(diff.join("etc/gone")).unwrap();
    assert!(gone.file_type().is_char_device() && gone.rdev() == 0);
    let opaque = rustix::fs::getxattr(
        diff.join("opaque").as_path(),
        "trusted.overlay.opaque",
        &mut [0u8; 8],
    )
    .unwrap();
    assert_eq!(opaque, 1);
    assert_eq!(
        std::fs::read(diff.join("etc/pax-named-file.txt")).unwrap(),
        b"pax"
    );

    // Byte for byte, by ChainID, prefix, diff_id and compressed digest.
    for name in [
        layer.id.to_string(),
        layer.id.encoded()[..10].to_owned(),
        diff_id.to_string(),
        compressed.digest.to_string(),
    ] {
        let mut out = Vec::new();
        store.diff(&name, &mut out).unwrap();
        assert!(out == tar, "re-tar by {name} differs");
    }
    assert!(store.check(&layer.id.to_string()).unwrap().is_clean());
}

#[test]
fn check_and_diff_name_what_changed_on_disk() {
    need_root();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("layers")).unwrap();
    let tar = odd_layer();
    let layer = store.apply(None, &sha(&tar), &tar[..], None).unwrap();
    let id = layer.id.to_string();
    let diff = store.diff_dir(&layer.id);
    std::fs::write(diff.join("etc/motd"), "HELLO").unwrap();
    std::fs::remove_file(diff.join("empty")).unwrap();
    std::fs::write(diff.join("etc/intruder"), "x").unwrap();
    let report = store.check(&id).unwrap();
    assert_eq!(report.changed, ["etc/motd"]);
    assert_eq!(report.missing, ["empty"]);
    assert_eq!(report.added, ["etc/intruder"]);
    let err = store.diff(&id, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(&err, Error::Changed { path, .. } if path == "etc/motd"),
        "{err}"
    );
}

#[test]
fn a_layer_present_is_not_applied_again_and_a_wrong_diff_id_leaves_nothing() {
    need_root();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("layers");
    let store = Store::open(&root).unwrap();
    let tar = odd_layer();
    let diff_id = sha(&tar);
    store.apply(None, &diff_id, &tar[..], None).unwrap();
    let again = store
        .apply(
            None,
            &diff_id,
            Untouchable,
            Some(&Compressed {
                digest: sha(b"another blob"),
                size: 1,
                compression: "zstd".into(),
            }),
        )
        .unwrap();
    assert!(
        again.compressed.is_empty(),
        "a digest never read is not recorded as one the layer came from"
    );

    let wrong = sha(b"not this layer");
    let err = store.apply(None, &wrong, &tar[..], None).unwrap_err();
    assert!(matches!(err, Error::DiffIdMismatch { .. }), "{err}");
    assert_eq!(store.layers().unwrap().len(), 1);
    assert!(!root.join(wrong.encoded()).exists());
}

#[test]
fn two_appliers_of_one_layer_both_succeed_with_one_layer() {
    need_root();
    let tmp = tempfile::tempdir().unwrap();
    let root = Arc::new(tmp.path().join("layers"));
    Store::open(&root).unwrap();
    // A bigger layer, so the two overlap.
    let mut tar = Vec::new();
    for i in 0u8..200 {
        let body = vec![b'a' + i % 26; 20_000];
        tar.extend(header(
            format!("f{i}").as_bytes(),
            b'0',
            body.len() as u64,
            b"",
            0,
            0,
        ));
        tar.extend(padded(&body));
    }
    tar.extend([0u8; 1024]);
    let tar = Arc::new(tar);
    let diff_id = sha(&tar);
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (root, tar, diff_id) = (Arc::clone(&root), Arc::clone(&tar), diff_id.clone());
            std::thread::spawn(move || {
                // Each its own store handle, its own lock files.
                let s = Store::open(&root).unwrap();
                s.apply(None, &diff_id, &tar[..], None).unwrap()
            })
        })
        .collect();
    let got: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(got[0], got[1]);
    let store = Store::open(&root).unwrap();
    assert_eq!(store.layers().unwrap().len(), 1);
    let mut out = Vec::new();
    store.diff(&diff_id.to_string(), &mut out).unwrap();
    assert!(out == *tar);
}

#[test]
fn chains_lookups_delete_and_gc() {
    need_root();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("layers")).unwrap();
    let one = {
        let mut t = Vec::from(header(b"a", b'0', 1, b"", 0, 0));
        t.extend(padded(b"1"));
        t.extend([0u8; 1024]);
        t
    };
    let two = {
        let mut t = Vec::from(header(b"b", b'0', 1, b"", 0, 0));
        t.extend(padded(b"2"));
        t.extend([0u8; 1024]);
        t
    };
    let base = store.apply(None, &sha(&one), &one[..], None).unwrap();
    let top = store
        .apply(Some(&base.id), &sha(&two), &two[..], None)
        .unwrap();
    assert_eq!(top.id, chain_id(Some(&base.id), &sha(&two)));
    assert_eq!(top.parent.as_ref(), Some(&base.id));
    // A parent that is not there is refused.
    let err = store
        .apply(Some(&sha(b"nobody")), &sha(&two), &two[..], None)
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    // Delete refuses a layer with a child.
    let err = store.delete(&base.id.to_string()).unwrap_err();
    assert!(err.to_string().contains("is the parent of"), "{err}");
    // gc keeps a kept layer's ancestry and removes strays.
    std::fs::create_dir(store.root().join("stray")).unwrap();
    assert!(store.gc(std::slice::from_ref(&top.id)).unwrap().is_empty());
    assert!(!store.root().join("stray").exists());
    let removed = store.gc(&[]).unwrap();
    assert_eq!(removed.len(), 2);
    assert!(store.layers().unwrap().is_empty());
}

#[test]
fn a_layer_left_incomplete_by_a_dead_process_is_removed_on_open() {
    need_root();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("layers");
    let store = Store::open(&root).unwrap();
    let tar = odd_layer();
    let layer = store.apply(None, &sha(&tar), &tar[..], None).unwrap();
    // Make it look like a dead process's half-applied layer.
    let path = root.join("layers.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("\"incomplete\": false", "\"incomplete\": true"),
    )
    .unwrap();
    assert!(Path::new(&store.diff_dir(&layer.id)).exists());
    let reopened = Store::open(&root).unwrap();
    assert!(reopened.layers().unwrap().is_empty());
    assert!(!reopened.diff_dir(&layer.id).exists());
}

fn end(mut t: Vec<u8>) -> Vec<u8> {
    t.extend([0u8; 1024]);
    t
}

#[test]
fn whiteouts_hide_lower_layers_only_and_a_path_written_twice_rebuilds_exactly() {
    need_root();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("layers")).unwrap();
    let mut t = Vec::new();
    t.extend(header(b"a", b'0', 1, b"", 0, 0));
    t.extend(padded(b"A"));
    t.extend(header(b".wh.a", b'0', 0, b"", 0, 0));
    t.extend(header(b".wh.e", b'0', 0, b"", 0, 0));
    t.extend(header(b"e/", b'5', 0, b"", 0, 0));
    t.extend(header(b"e/x", b'0', 1, b"", 0, 0));
    t.extend(padded(b"X"));
    let t = end(t);
    let layer = store.apply(None, &sha(&t), &t[..], None).unwrap();
    let diff = store.diff_dir(&layer.id);
    // The layer's own `a` stays; `e`, re-added over its own whiteout,
    // replaces the lower one: opaque.
    assert_eq!(std::fs::read(diff.join("a")).unwrap(), b"A");
    let mut v = [0u8; 4];
    let n =
        rustix::fs::getxattr(diff.join("e").as_path(), "trusted.overlay.opaque", &mut v).unwrap();
    assert_eq!(&v[..n], b"y");
    let mut out = Vec::new();
    store.diff(&layer.id.to_string(), &mut out).unwrap();
    assert!(out == t);
    assert!(store.check(&layer.id.to_string()).unwrap().is_clean());

    // The same path written twice, and a link over a file: applied, the
    // earlier contents kept aside, rebuilt byte for byte, checked clean.
    let mut twice = Vec::new();
    for body in [b"1", b"2"] {
        twice.extend(header(b"f", b'0', 1, b"", 0, 0));
        twice.extend(padded(body));
    }
    twice.extend(header(b"g", b'0', 1, b"", 0, 0));
    twice.extend(padded(b"G"));
    twice.extend(header(b"g", b'2', 0, b"f", 0, 0));
    let twice = end(twice);
    let layer = store.apply(None, &sha(&twice), &twice[..], None).unwrap();
    let diff = store.diff_dir(&layer.id);
    assert_eq!(std::fs::read(diff.join("f")).unwrap(), b"2");
    assert!(
        diff.join("g")
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let mut out = Vec::new();
    store.diff(&layer.id.to_string(), &mut out).unwrap();
    assert!(out == twice);
    assert!(store.check(&layer.id.to_string()).unwrap().is_clean());
    store.delete(&layer.id.to_string()).unwrap();
    assert_eq!(store.layers().unwrap().len(), 1);

    // A directory named after its files keeps them (tars do this): it
    // applies and rebuilds exactly. A link over that directory would drop
    // them: refused.
    let mut late = Vec::new();
    late.extend(header(b"d/f", b'0', 1, b"", 0, 0));
    late.extend(padded(b"F"));
    late.extend(header(b"d/", b'5', 0, b"", 0, 0));
    let late = end(late);
    let layer = store.apply(None, &sha(&late), &late[..], None).unwrap();
    let mut out = Vec::new();
    store.diff(&layer.id.to_string(), &mut out).unwrap();
    assert!(out == late);
    let mut over = Vec::new();
    over.extend(header(b"d/f", b'0', 1, b"", 0, 0));
    over.extend(padded(b"F"));
    over.extend(header(b"d", b'2', 0, b"elsewhere", 0, 0));
    let over = end(over);
    let err = store.apply(None, &sha(&over), &over[..], None).unwrap_err();
    assert!(
        err.to_string()
            .contains("over a directory of files it wrote"),
        "{err}"
    );
}

#[test]
fn a_compressed_digest_is_checked_and_gc_keeps_the_parent_of_a_layer_being_applied() {
    need_root();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("layers");
    let store = Store::open(&root).unwrap();
    let mut one = Vec::from(header(b"a", b'0', 1, b"", 0, 0));
    one.extend(padded(b"1"));
    let one = end(one);
    let gz = gzip(&one);
    let lie = Compressed {
        digest: sha(b"some other blob"),
        size: gz.len() as u64,
        compression: "gzip".into(),
    };
    let err = store
        .apply(None, &sha(&one), &gz[..], Some(&lie))
        .unwrap_err();
    assert!(
        err.to_string().contains("not the compressed layer"),
        "{err}"
    );
    assert!(store.layers().unwrap().is_empty());
    let base = store.apply(None, &sha(&one), &gz[..], None).unwrap();

    // A child being applied by a live process: its record is incomplete
    // and its apply lock is held.
    let mut two = Vec::from(header(b"b", b'0', 1, b"", 0, 0));
    two.extend(padded(b"2"));
    let two = end(two);
    let child = store
        .apply(Some(&base.id), &sha(&two), &two[..], None)
        .unwrap();
    let path = root.join("layers.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for l in v["layers"].as_array_mut().unwrap() {
        if l["id"] == child.id.to_string() {
            l["incomplete"] = true.into();
        }
    }
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let lock = std::fs::File::create(root.join(format!("{}.lock", child.id.encoded()))).unwrap();
    lock.lock().unwrap();
    let reopened = Store::open(&root).unwrap();
    assert!(
        reopened.gc(&[]).unwrap().is_empty(),
        "gc took the parent of a layer being applied"
    );
    assert_eq!(reopened.layers().unwrap().len(), 2);
    drop(lock);
}

#[test]
fn a_chain_mounts_read_only_with_counts() {
    need_root();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("layers")).unwrap();
    let counts = tmp.path().join("exec");
    let mut base = Vec::new();
    base.extend(header(b"keep", b'0', 1, b"", 0, 0));
    base.extend(padded(b"k"));
    base.extend(header(b"gone", b'0', 1, b"", 0, 0));
    base.extend(padded(b"g"));
    base.extend(header(b"d/", b'5', 0, b"", 0, 0));
    base.extend(header(b"d/old", b'0', 1, b"", 0, 0));
    base.extend(padded(b"o"));
    let base = end(base);
    let mut top = Vec::new();
    top.extend(header(b".wh.gone", b'0', 0, b"", 0, 0));
    top.extend(header(b"d/", b'5', 0, b"", 0, 0));
    top.extend(header(b"d/.wh..wh..opq", b'0', 0, b"", 0, 0));
    top.extend(header(b"d/new", b'0', 1, b"", 0, 0));
    top.extend(padded(b"n"));
    let top = end(top);
    let b = store.apply(None, &sha(&base), &base[..], None).unwrap();
    let t = store
        .apply(Some(&b.id), &sha(&top), &top[..], None)
        .unwrap();
    let target = tmp.path().join("view");
    // Whatever the test's outcome, nothing stays mounted under /tmp.
    let _guard = Unmount(target.clone());
    let id = t.id.to_string();
    assert_eq!(store.mount(&id, &target, &counts).unwrap(), 1);
    // The merged view: whiteouts and the opaque directory did their work.
    let mut names: Vec<String> = std::fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["d", "keep"]);
    // (Counted, not kept: a DirEntry holds its directory open.)
    assert_eq!(std::fs::read_dir(target.join("d")).unwrap().count(), 1);
    assert!(
        std::fs::write(target.join("keep"), "x").is_err(),
        "read-only"
    );
    // Counted: a second holder does not mount again.
    assert_eq!(store.mount(&id, &target, &counts).unwrap(), 2);
    assert_eq!(store.mounted(&counts).unwrap().len(), 1);
    assert_eq!(store.unmount(&target, &counts, false).unwrap(), 1);
    assert!(target.join("keep").exists());
    assert_eq!(store.unmount(&target, &counts, false).unwrap(), 0);
    assert!(!target.join("keep").exists(), "unmounted at zero");

    // A mount that vanished behind the counts' back is corrected.
    store.mount(&id, &target, &counts).unwrap();
    rustix::mount::unmount(target.as_path(), rustix::mount::UnmountFlags::empty()).unwrap();
    assert!(store.mounted(&counts).unwrap().is_empty());
    assert_eq!(store.mount(&id, &target, &counts).unwrap(), 1);
    // A kill between the mount and its record (count still 0): unmount
    // still cleans it.
    let path = counts.join("layer-mounts.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"count\": 1", "\"count\": 0")).unwrap();
    assert_eq!(store.unmount(&target, &counts, false).unwrap(), 0);
    assert!(!target.join("keep").exists());
    // Another layer's chain is refused at a target in use.
    store.mount(&id, &target, &counts).unwrap();
    let err = store
        .mount(&b.id.to_string(), &target, &counts)
        .unwrap_err();
    assert!(err.to_string().contains("holds layer"), "{err}");
    store.unmount(&target, &counts, true).unwrap();
}

#[test]
fn a_chain_of_300_layers_mounts() {
    need_root();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("layers")).unwrap();
    let counts = tmp.path().join("exec");
    let mut parent: Option<Digest> = None;
    for i in 0..300u32 {
        let name = format!("f{i:03}");
        let mut t = Vec::from(header(name.as_bytes(), b'0', 4, b"", 0, 0));
        t.extend(padded(&i.to_le_bytes()));
        let t = end(t);
        let l = store
            .apply(parent.as_ref(), &sha(&t), &t[..], None)
            .unwrap();
        parent = Some(l.id);
    }
    let top = parent.unwrap();
    let target = tmp.path().join("deep");
    let _guard = Unmount(target.clone());
    store.mount(&top.to_string(), &target, &counts).unwrap();
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 300);
    assert_eq!(
        std::fs::read(target.join("f000")).unwrap(),
        0u32.to_le_bytes()
    );
    assert_eq!(
        std::fs::read(target.join("f299")).unwrap(),
        299u32.to_le_bytes()
    );
    store.unmount(&target, &counts, false).unwrap();
}
