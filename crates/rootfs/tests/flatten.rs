//! Flattening equals applying the layers one by one, for hand-written and
//! random layer stacks.

use pluginctl_rootfs::extract::{self, apply_layer, apply_layers};
use pluginctl_rootfs::flatten::{self, flatten};
use pluginctl_rootfs::tar::{Header, Kind, Writer};
use pluginctl_testkit::{layer, tree};
use proptest::prelude::*;

/// Applies the layers one by one, and the flattened tar once; returns both
/// trees (or both errors).
fn both(layers: &[Vec<u8>]) -> (Result<String, String>, Result<String, String>) {
    let seq = tempfile::tempdir().unwrap();
    let sequential = apply_layers(
        seq.path(),
        layers.iter().map(|l| &l[..]),
        &extract::Options::default(),
    )
    .map(|_| tree(seq.path()))
    .map_err(|e| e.to_string());
    let mut flat = Vec::new();
    let flattened =
        flatten(layers, &mut flat, &flatten::Options::default()).map_err(|e| e.to_string());
    if flattened.is_ok() {
        same_through_regions(layers, &flat);
    }
    let flattened = flattened.and_then(|_| {
        let dir = tempfile::tempdir().unwrap();
        apply_layer(dir.path(), &flat[..], &extract::Options::default())
            .map(|_| tree(dir.path()))
            .map_err(|e| format!("extracting the flattened tar: {e}"))
    });
    (sequential, flattened)
}

/// The layers stored one after another in a file (after some junk, so that
/// offsets matter), offered as regions.
struct InFile {
    file: std::fs::File,
    spans: Vec<(u64, u64)>,
}

impl InFile {
    fn new(layers: &[Vec<u8>]) -> InFile {
        use std::io::Write as _;
        let mut file = tempfile::tempfile().unwrap();
        let mut spans = Vec::new();
        let mut at = 0u64;
        for (i, l) in layers.iter().enumerate() {
            let junk = vec![0xA5u8; 7 + i * 13];
            file.write_all(&junk).unwrap();
            at += junk.len() as u64;
            file.write_all(l).unwrap();
            spans.push((at, l.len() as u64));
            at += l.len() as u64;
        }
        file.write_all(b"trailing junk").unwrap();
        InFile { file, spans }
    }
}

impl flatten::Layers for InFile {
    fn len(&self) -> usize {
        self.spans.len()
    }
    fn open(&self, i: usize) -> pluginctl_rootfs::Result<Box<dyn std::io::Read + Send + '_>> {
        let (offset, len) = self.spans[i];
        let mut buf = vec![0u8; usize::try_from(len).unwrap()];
        std::os::unix::fs::FileExt::read_exact_at(&self.file, &mut buf, offset).unwrap();
        Ok(Box::new(std::io::Cursor::new(buf)))
    }
    fn region(&self, i: usize) -> pluginctl_rootfs::Result<Option<flatten::Region>> {
        let (offset, len) = self.spans[i];
        Ok(Some(flatten::Region {
            file: self.file.try_clone().unwrap(),
            offset,
            len,
        }))
    }
}

/// Flattening layers given as file regions — seeking in pass 1, kernel
/// copies into a file or buffered copies into memory in pass 2 — writes the
/// very bytes the streaming path writes.
fn same_through_regions(layers: &[Vec<u8>], streamed: &[u8]) {
    use std::io::{Read as _, Seek as _};
    let input = InFile::new(layers);
    let mut out = tempfile::tempfile().unwrap();
    flatten::flatten_file(&input, &out, &flatten::Options::default()).unwrap();
    let mut got = Vec::new();
    out.rewind().unwrap();
    out.read_to_end(&mut got).unwrap();
    assert!(
        got == streamed,
        "flatten_file over regions differs from the streaming flatten"
    );
    let mut mem = Vec::new();
    flatten(&input, &mut mem, &flatten::Options::default()).unwrap();
    assert!(
        mem == streamed,
        "flatten over regions differs from the streaming flatten"
    );
}

fn check(specs: &[&str]) {
    let layers: Vec<Vec<u8>> = specs.iter().map(|s| layer(s)).collect();
    let (seq, flat) = both(&layers);
    assert!(seq.is_ok(), "{seq:?}");
    assert_eq!(flat, seq, "{specs:#?}");
}

#[test]
fn the_cases_that_trip_flatteners() {
    let base = "dir d/\nfile d/x \"x\"\nfile d/y \"y\"\ndir d/sub/\nfile d/sub/a \"a\"\nfile top \"t\" mode=4755";
    check(&[base]);
    check(&[base, "wh d"]);
    check(&[base, "opq d\nfile d/z \"z\""]);
    check(&[base, "file d/z \"z\"\nopq d"]);
    check(&[base, "file d/sub/new \"n\"\nopq d"]);
    check(&[base, "link d -> top"]);
    check(&[base, "file d \"file now\""]);
    check(&[base, "wh d\ndir d/"]);
    check(&["file a \"shared\"\nhard b => a", "wh a"]);
    check(&["file a \"shared\"\nhard b => a", "file a \"new\""]);
    check(&["file a \"x\"", "hard b => a"]);
    check(&["link s -> x", "dir s/\nfile s/f \"f\""]);
    check(&["dir real/\nlink s -> real", "file s/through \"via link\""]);
    check(&[
        "dir real/\nlink s -> /real",
        "file s/abs \"via abs link\"",
        "wh s/abs",
    ]);
    check(&["file a \"old\"", "wh a", "file a \"new\""]);
    check(&["dir .wh..wh.plnk/\nfile .wh..wh.plnk/1 \"x\"\nfile keep \"k\""]);
}

#[test]
fn output_is_deterministic_and_has_each_file_once() {
    let layers = [
        layer("file a \"1\"\nfile b \"2\""),
        layer("file a \"3\"\nhard c => b"),
    ];
    let mut one = Vec::new();
    let stats = flatten(&layers[..], &mut one, &flatten::Options::default()).unwrap();
    let mut two = Vec::new();
    flatten(&layers[..], &mut two, &flatten::Options::default()).unwrap();
    assert_eq!(one, two);
    assert_eq!(stats.entries_in, 4);
    assert_eq!(stats.entries_out, 3, "a (new), b, and c as a hardlink to b");
    assert_eq!(stats.bytes, 2);
}

#[test]
fn errors_name_the_entry() {
    let layers = [layer("hard h => missing")];
    let mut out = Vec::new();
    let err = flatten(&layers[..], &mut out, &flatten::Options::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "entry \"h\": hardlink target \"missing\" is not extracted"
    );
    let layers = [layer("file ../x \"x\"")];
    let err = flatten(&layers[..], &mut out, &flatten::Options::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "entry \"../x\": its path leaves the root through '..'"
    );
}

/// A random entry over a small set of names, so that layers collide.
fn entry() -> impl Strategy<Value = (u8, String, String, u32)> {
    let names = prop::sample::select(vec![
        "a", "b", "d", "d/x", "d/y", "d/e", "d/e/f", "e", "e/g", "s", "s/h",
    ]);
    let targets = prop::sample::select(vec!["a", "d", "d/x", "e", "/d", "../d", "/e/g", "s"]);
    (
        0u8..8,
        names,
        targets,
        prop::sample::select(vec![0o644, 0o755, 0o4755, 0o600]),
    )
        .prop_map(|(k, n, t, m)| (k, n.to_owned(), t.to_owned(), m))
}

fn build_layer(entries: &[(u8, String, String, u32)], salt: usize) -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    for (i, (k, name, target, mode)) in entries.iter().enumerate() {
        let (base_dir, base) = name
            .rsplit_once('/')
            .map_or(("", name.as_str()), |(d, b)| (d, b));
        let join = |b: &str| {
            if base_dir.is_empty() {
                b.to_owned()
            } else {
                format!("{base_dir}/{b}")
            }
        };
        let content = format!("{name}@{salt}.{i}");
        let mut h = match k {
            0 | 1 => {
                let mut h = Header::new(Kind::File, name.as_bytes());
                h.size = content.len() as u64;
                h
            }
            2 => Header::new(Kind::Dir, format!("{name}/").as_bytes()),
            3 => {
                let mut h = Header::new(Kind::Symlink, name.as_bytes());
                h.link = target.clone().into_bytes();
                h
            }
            4 => {
                let mut h = Header::new(Kind::Hardlink, name.as_bytes());
                h.link = target.trim_start_matches("../").as_bytes().to_vec();
                h
            }
            5 => Header::new(Kind::File, join(&format!(".wh.{base}")).as_bytes()),
            6 => Header::new(Kind::File, join(".wh..wh..opq").as_bytes()),
            _ => Header::new(Kind::Fifo, name.as_bytes()),
        };
        if !matches!(k, 3 | 4) {
            h.mode = *mode;
        }
        let data = if h.kind == Kind::File && !matches!(k, 5 | 6) {
            content.into_bytes()
        } else {
            Vec::new()
        };
        w.append(&h, &mut &data[..]).unwrap();
    }
    w.finish().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn flatten_equals_sequential_extraction(stack in prop::collection::vec(prop::collection::vec(entry(), 0..7), 1..5)) {
        let layers: Vec<Vec<u8>> = stack.iter().enumerate().map(|(i, l)| build_layer(l, i)).collect();
        let (seq, flat) = both(&layers);
        match (&seq, &flat) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            _ => prop_assert!(false, "sequential {:?} but flattened {:?}", seq, flat),
        }
    }
}
