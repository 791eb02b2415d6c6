//! Exact re-tar: tars written by other tools (`testdata/`: GNU tar's gnu,
//! oldgnu and pax formats with long names and links, a non-UTF-8 name,
//! hardlinks, a setuid file, the 10 KiB record padding, and one cut after
//! its last member with no end blocks) and random streams (a property
//! test: names long and short, files, rewrites of a path, links, extra end
//! blocks and trailing bytes) are applied, then `diff` gives back the
//! input byte for byte and `check` finds nothing changed.

use pluginctl_layers::Store;
use pluginctl_oci::Digest;
use pluginctl_rootfs::tar::{Header, Kind, Writer};
use proptest::prelude::*;

fn need_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "the layer store writes whiteout devices and trusted xattrs: run the tests as root (CI does)"
    );
}

/// Applies `tar` as a first layer, then checks it rebuilds exactly.
fn round_trip(store: &Store, tar: &[u8]) -> Result<(), String> {
    let layer = store
        .apply(None, &Digest::of_bytes(tar), tar, None)
        .map_err(|e| format!("apply: {e}"))?;
    let id = layer.id.to_string();
    let mut out = Vec::new();
    store
        .diff(&id, &mut out)
        .map_err(|e| format!("diff: {e}"))?;
    if out != tar {
        let at = out.iter().zip(tar).position(|(a, b)| a != b);
        return Err(format!(
            "diff differs (lengths {} and {}, first difference at {at:?})",
            out.len(),
            tar.len()
        ));
    }
    let report = store.check(&id).map_err(|e| format!("check: {e}"))?;
    if !report.is_clean() {
        return Err(format!("check: {report:?}"));
    }
    store.delete(&id).map_err(|e| format!("delete: {e}"))?;
    Ok(())
}

#[test]
fn tars_of_gnu_tar_rebuild_byte_for_byte() {
    need_root();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("layers")).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    for name in ["gnu.tar", "oldgnu.tar", "pax.tar", "gnu-no-end.tar"] {
        let tar = std::fs::read(dir.join(name)).unwrap();
        round_trip(&store, &tar).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// One entry of a random stream.
#[derive(Debug, Clone)]
enum Entry {
    Dir(u8),
    File(u8, Vec<u8>),
    Symlink(u8, u8),
    Hardlink(u8, u8),
}

/// A name from a small set, so that entries collide: short, long (over
/// the 100 bytes of ustar's name field), nested, not UTF-8.
fn name(n: u8) -> Vec<u8> {
    match n % 6 {
        0 => format!("f{n}").into_bytes(),
        1 => format!("d{}/f{n}", n % 3).into_bytes(),
        2 => format!("{}/{n}", "long".repeat(30)).into_bytes(),
        3 => vec![b'n', 0xe9, b'0' + n % 10],
        4 => format!("d{}/{}", n % 3, "x".repeat(120)).into_bytes(),
        _ => format!("d{}", n % 3).into_bytes(),
    }
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        (0u8..3).prop_map(|d| Entry::Dir(5 + d * 6)),
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..1500))
            .prop_map(|(n, b)| Entry::File(n, b)),
        (any::<u8>(), any::<u8>()).prop_map(|(n, t)| Entry::Symlink(n, t)),
        (any::<u8>(), any::<u8>()).prop_map(|(n, t)| Entry::Hardlink(n, t)),
    ]
}

/// The stream: every parent directory first, then the entries (a hard
/// link only to a file written before it), then `extra` zero blocks and
/// `trailing` bytes after the end.
fn stream(entries: &[Entry], extra: usize, trailing: &[u8]) -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    let mut files: Vec<Vec<u8>> = Vec::new();
    let mut dirs: Vec<Vec<u8>> = Vec::new();
    for d in ["d0", "d1", "d2", &"long".repeat(30)] {
        let mut h = Header::new(Kind::Dir, d.as_bytes());
        h.path.push(b'/');
        w.append(&h, &mut std::io::empty()).unwrap();
        dirs.push(d.as_bytes().to_vec());
    }
    for e in entries {
        let (mut h, data): (Header, Vec<u8>) = match e {
            Entry::Dir(n) => (Header::new(Kind::Dir, &name(*n)), Vec::new()),
            Entry::File(n, b) => {
                let mut h = Header::new(Kind::File, &name(*n));
                h.size = b.len() as u64;
                (h, b.clone())
            }
            Entry::Symlink(n, t) => {
                let mut h = Header::new(Kind::Symlink, &name(*n));
                h.link = name(*t);
                (h, Vec::new())
            }
            Entry::Hardlink(n, t) => {
                let Some(target) = files.get(usize::from(*t) % files.len().max(1)) else {
                    continue;
                };
                let mut h = Header::new(Kind::Hardlink, &name(*n));
                h.link.clone_from(target);
                (h, Vec::new())
            }
        };
        // What the store refuses (a non-directory over a directory, or
        // over a file it holds as a parent) and what no tar means (a link
        // onto itself) are left out.
        let p = h.path.clone();
        if h.link == p
            || (h.kind != Kind::Dir && dirs.contains(&p))
            || files
                .iter()
                .any(|f| p.starts_with(f) && p.get(f.len()) == Some(&b'/'))
            || (h.kind == Kind::Dir && files.contains(&p))
        {
            continue;
        }
        if h.kind == Kind::Dir {
            h.path.push(b'/');
            dirs.push(p);
        } else {
            files.retain(|f| f != &p);
            if matches!(h.kind, Kind::File) {
                files.push(p);
            }
        }
        w.append(&h, &mut &data[..]).unwrap();
    }
    let mut out = w.finish().unwrap();
    out.extend(std::iter::repeat_n(0u8, extra * 512));
    out.extend_from_slice(trailing);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_streams_rebuild_byte_for_byte(
        entries in proptest::collection::vec(entry(), 0..24),
        extra in 0usize..4,
        trailing in proptest::collection::vec(any::<u8>(), 0..3),
    ) {
        need_root();
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("layers")).unwrap();
        let tar = stream(&entries, extra, &trailing);
        let result = round_trip(&store, &tar);
        prop_assert!(result.is_ok(), "{:?}: {:?}", entries, result);
    }
}
