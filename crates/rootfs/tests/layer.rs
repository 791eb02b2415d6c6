//! Layers written from a directory: deterministic, and extracting one gives
//! the directory back. Plugin contexts: split, with errors that say which
//! part is missing.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use pluginctl_oci::Digest;
use pluginctl_rootfs::context;
use pluginctl_rootfs::extract::{Options, apply_layer};
use pluginctl_rootfs::layer::{Compression, write_layer};
use pluginctl_testkit::{layer, tree};
use proptest::prelude::*;

fn set_mtime(p: &Path, secs: i64) {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        p,
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// A tree from a list of (kind, name, mode) over a few names.
fn build(dir: &Path, items: &[(u8, usize, u32)]) {
    const NAMES: [&str; 8] = ["a", "b", "d", "d/c", "d/e", "d/e/f", "g", "d/h"];
    for (i, &(kind, n, mode)) in items.iter().enumerate() {
        let p = dir.join(NAMES[n]);
        if fs::symlink_metadata(&p).is_ok() || !p.parent().unwrap().is_dir() {
            continue;
        }
        match kind {
            0 | 1 => {
                fs::write(&p, format!("content {i} {}", "x".repeat(i * 300))).unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
            }
            2 => {
                fs::create_dir(&p).unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(mode | 0o700)).unwrap();
            }
            3 => symlink(format!("../target{i}"), &p).unwrap(),
            4 => {
                let first = dir.join("a");
                if fs::symlink_metadata(&first).is_ok_and(|m| m.is_file()) {
                    fs::hard_link(&first, &p).unwrap();
                }
            }
            _ => rustix::fs::mknodat(
                rustix::fs::CWD,
                &p,
                rustix::fs::FileType::Fifo,
                rustix::fs::Mode::from_raw_mode(0o644),
                0,
            )
            .unwrap(),
        }
        if fs::symlink_metadata(&p).is_ok() {
            set_mtime(&p, 1_000_000 + i64::try_from(i).unwrap());
        }
    }
}

fn mtimes(root: &Path) -> Vec<(String, i64)> {
    let mut v = Vec::new();
    pluginctl_testkit::walk(root, root, &mut |rel, meta, _| {
        v.push((rel.to_owned(), meta.mtime()));
    });
    v
}

fn item() -> impl Strategy<Value = (u8, usize, u32)> {
    (
        0u8..6,
        0usize..8,
        prop::sample::select(vec![0o644, 0o755, 0o4755, 0o2750, 0o1777, 0o600]),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(60))]

    #[test]
    fn extract_of_create_is_the_identity(items in prop::collection::vec(item(), 0..14), zstd in any::<bool>()) {
        let src = tempfile::tempdir().unwrap();
        build(src.path(), &items);
        let compression = if zstd { Compression::ZSTD } else { Compression::GZIP };
        let mut bytes = Vec::new();
        let info = write_layer(src.path(), &mut bytes, compression, 2).unwrap();
        prop_assert_eq!(&info.digest, &Digest::of_bytes(&bytes));
        prop_assert_eq!(info.size, bytes.len() as u64);
        let dst = tempfile::tempdir().unwrap();
        apply_layer(dst.path(), &bytes[..], &Options::default()).unwrap();
        prop_assert_eq!(tree(dst.path()), tree(src.path()));
        prop_assert_eq!(mtimes(dst.path()), mtimes(src.path()));
        // Twice gives the same bytes, whatever the thread count.
        let mut again = Vec::new();
        let info2 = write_layer(src.path(), &mut again, compression, 1).unwrap();
        prop_assert_eq!(info2, info);
        prop_assert_eq!(again, bytes);
    }
}

#[test]
fn diff_id_is_the_digest_of_the_uncompressed_tar() {
    let src = tempfile::tempdir().unwrap();
    build(src.path(), &[(0, 0, 0o644), (2, 2, 0o755), (0, 3, 0o600)]);
    let mut gz = Vec::new();
    let info = write_layer(src.path(), &mut gz, Compression::GZIP, 2).unwrap();
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(info.diff_id, Digest::of_bytes(&plain));
    assert_eq!(info.uncompressed_size, plain.len() as u64);
    assert_eq!(info.entries, 3);
    let mut raw = Vec::new();
    let none = write_layer(src.path(), &mut raw, Compression::None, 2).unwrap();
    assert_eq!(raw, plain);
    assert_eq!(none.digest, none.diff_id);
    assert_eq!(
        Compression::ZSTD.media_type().as_str(),
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
}

#[test]
fn contexts_from_a_directory() {
    let ctx = tempfile::tempdir().unwrap();
    let err = context::from_dir(ctx.path()).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("plugin context {} has no config.json", ctx.path().display())
    );
    fs::write(ctx.path().join("config.json"), b"{}").unwrap();
    let err = context::from_dir(ctx.path()).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "plugin context {} has no rootfs directory",
            ctx.path().display()
        )
    );
    fs::create_dir(ctx.path().join("rootfs")).unwrap();
    let c = context::from_dir(ctx.path()).unwrap();
    assert_eq!(c.config, b"{}");
    assert_eq!(c.rootfs, ctx.path().join("rootfs"));
}

#[test]
fn contexts_from_a_tar_rewrite_rootfs_names_and_hardlinks() {
    let tar = layer(
        "file config.json \"{\\\"description\\\":\\\"x\\\"}\"
         dir rootfs/
         dir rootfs/bin/
         file rootfs/bin/tool \"t\" mode=755
         hard rootfs/bin/alias => rootfs/bin/tool
         file README \"ignored\"",
    );
    let dest = tempfile::tempdir().unwrap();
    let (config, stats) = context::unpack_tar(&tar[..], dest.path(), &Options::default()).unwrap();
    assert_eq!(config, br#"{"description":"x"}"#);
    assert_eq!(stats.entries, 3);
    assert_eq!(
        tree(dest.path()),
        "d bin 755\nf bin/alias 755 t\nf bin/tool 755 t =bin/alias"
    );

    let err = |spec: &str| {
        let d = tempfile::tempdir().unwrap();
        context::unpack_tar(&layer(spec)[..], d.path(), &Options::default())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(err("dir rootfs/"), "plugin context tar has no config.json");
    assert_eq!(
        err("file config.json \"{}\""),
        "plugin context tar has no rootfs directory"
    );
    assert_eq!(
        err("file config.json \"{}\"\nfile secret \"s\"\nhard rootfs/s => secret"),
        "entry \"rootfs/s\": its hardlink target is not under rootfs/"
    );
    assert_eq!(
        err("file config.json \"{}\"\nfile rootfs/../../x \"s\""),
        "entry \"rootfs/../../x\": its path leaves the root through '..'"
    );
}
