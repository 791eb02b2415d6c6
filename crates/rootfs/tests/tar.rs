//! The tar reader and writer: formats, extensions, limits and bad input.

use std::io::Read;

use pluginctl_rootfs::Error;
use pluginctl_rootfs::decompress::{self, decompress};
use pluginctl_rootfs::tar::{Header, Kind, Limits, Reader, Writer};
use proptest::prelude::*;

fn read_all(bytes: &[u8], limits: Limits) -> Result<Vec<(Header, Vec<u8>)>, Error> {
    let mut r = Reader::new(bytes, limits);
    let mut out = Vec::new();
    while let Some(h) = r.next_header()? {
        let mut data = Vec::new();
        r.data().read_to_end(&mut data).map_err(Error::Read)?;
        out.push((h, data));
    }
    Ok(out)
}

/// A raw 512-byte header with a correct checksum.
fn raw_header(name: &[u8], flag: u8, size: u64, tweak: impl FnOnce(&mut [u8; 512])) -> [u8; 512] {
    let mut b = [0u8; 512];
    b[..name.len()].copy_from_slice(name);
    b[100..107].copy_from_slice(b"0000644");
    b[108..115].copy_from_slice(b"0000000");
    b[116..123].copy_from_slice(b"0000000");
    b[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    b[136..147].copy_from_slice(b"00000000000");
    b[156] = flag;
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    tweak(&mut b);
    b[148..156].copy_from_slice(b"        ");
    let sum: u32 = b.iter().map(|&c| u32::from(c)).sum();
    b[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    b
}

fn padded(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    v.resize(data.len().div_ceil(512) * 512, 0);
    v
}

fn archive(parts: &[&[u8]]) -> Vec<u8> {
    let mut v: Vec<u8> = parts.concat();
    v.extend_from_slice(&[0u8; 1024]);
    v
}

#[test]
fn gnu_long_names_and_links() {
    let long = "d/".repeat(80) + "file";
    let target = "t/".repeat(70) + "x";
    let name_data = format!("{long}\0");
    let link_data = format!("{target}\0");
    let tar = archive(&[
        &raw_header(b"././@LongLink", b'L', name_data.len() as u64, |_| {}),
        &padded(name_data.as_bytes()),
        &raw_header(b"././@LongLink", b'K', link_data.len() as u64, |_| {}),
        &padded(link_data.as_bytes()),
        &raw_header(b"short-name", b'2', 0, |_| {}),
    ]);
    let entries = read_all(&tar, Limits::default()).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0.path, long.as_bytes());
    assert_eq!(entries[0].0.link, target.as_bytes());
    assert_eq!(entries[0].0.kind, Kind::Symlink);
}

#[test]
fn pax_size_is_honoured_over_the_header_size() {
    // The header says 0 bytes; the PAX record says 5. Go and GNU tar read 5.
    let record = b"10 size=5\n";
    let tar = archive(&[
        &raw_header(b"PaxHeaders/f", b'x', record.len() as u64, |_| {}),
        &padded(record),
        &raw_header(b"f", b'0', 0, |_| {}),
        &padded(b"hello"),
        &raw_header(b"g", b'0', 2, |_| {}),
        &padded(b"ok"),
    ]);
    let entries = read_all(&tar, Limits::default()).unwrap();
    assert_eq!(entries[0].1, b"hello");
    assert_eq!(entries[1].0.path, b"g");
    assert_eq!(entries[1].1, b"ok");
}

#[test]
fn pax_global_headers_are_ignored_as_docker_ignores_them() {
    let record = b"15 uid=1234567\n";
    let tar = archive(&[
        &raw_header(b"pax_global_header", b'g', record.len() as u64, |_| {}),
        &padded(record),
        &raw_header(b"a", b'0', 0, |_| {}),
        &raw_header(b"b", b'0', 0, |_| {}),
    ]);
    let entries = read_all(&tar, Limits::default()).unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|(h, _)| h.uid == 0));
}

#[test]
fn hostile_pax_sizes_and_xattrs_are_refused() {
    let record = b"29 size=18446744073709551615\n";
    let tar = archive(&[
        &raw_header(b"PaxHeaders/f", b'x', record.len() as u64, |_| {}),
        &padded(record),
        &raw_header(b"f", b'0', 0, |_| {}),
    ]);
    assert_eq!(
        err_of(&tar, Limits::default()),
        "invalid tar at byte 1024: entry size 18446744073709551615 is out of range"
    );
    let mut many = String::new();
    for i in 0..200 {
        let rec = format!(" SCHILY.xattr.user.a{i}=v\n");
        let len = rec.len() + 2; // every record here is 10 to 99 bytes
        let record = format!("{len}{rec}");
        assert_eq!(record.len(), len);
        many.push_str(&record);
    }
    let tar = archive(&[
        &raw_header(b"PaxHeaders/f", b'x', many.len() as u64, |_| {}),
        &padded(many.as_bytes()),
        &raw_header(b"f", b'0', 0, |_| {}),
    ]);
    assert_eq!(
        err_of(&tar, Limits::default()),
        "invalid tar at byte 0: more than 128 extended attributes or 65536 bytes of them"
    );
}

#[test]
fn base256_numbers_are_read() {
    let tar = archive(&[&raw_header(b"big-uid", b'0', 0, |b| {
        b[108..116].copy_from_slice(&[0x80, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff]);
        // A negative mtime: -1 in base-256.
        b[136..148].copy_from_slice(&[0xff; 12]);
    })]);
    let entries = read_all(&tar, Limits::default()).unwrap();
    assert_eq!(entries[0].0.uid, 0x7fff_ffff);
    assert_eq!(entries[0].0.mtime, -1);
}

#[test]
fn v7_directory_and_hardlink_without_data() {
    // A v7 file entry whose name ends in '/' is a directory; a hardlink's
    // size field carries no data (Go's rule).
    let tar = archive(&[
        &raw_header(b"dir/", 0, 0, |b| b[257..265].fill(0)),
        &raw_header(b"hl", b'1', 100, |b| b[157..161].copy_from_slice(b"file")),
        &raw_header(b"after", b'0', 1, |_| {}),
        &padded(b"z"),
    ]);
    let entries = read_all(&tar, Limits::default()).unwrap();
    assert_eq!(entries[0].0.kind, Kind::Dir);
    assert_eq!(entries[1].0.kind, Kind::Hardlink);
    assert_eq!(entries[1].0.size, 0);
    assert_eq!(entries[2].1, b"z");
}

fn err_of(tar: &[u8], limits: Limits) -> String {
    let e = read_all(tar, limits).unwrap_err();
    let mut s = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(inner) = src {
        s = format!("{s}: {inner}");
        src = inner.source();
    }
    s
}

#[test]
fn bad_archives_get_clear_errors() {
    let sparse = archive(&[&raw_header(b"holes", b'S', 0, |_| {})]);
    assert_eq!(
        err_of(&sparse, Limits::default()),
        "invalid tar at byte 0: \"holes\" is a GNU sparse file, which is not supported"
    );
    let odd = archive(&[&raw_header(b"vol", b'V', 0, |_| {})]);
    assert_eq!(
        err_of(&odd, Limits::default()),
        "invalid tar at byte 0: \"vol\" has unsupported entry type 'V'"
    );
    let mut bad_sum = raw_header(b"f", b'0', 0, |_| {});
    bad_sum[0] = b'g';
    assert!(
        err_of(&archive(&[&bad_sum]), Limits::default())
            .starts_with("invalid tar at byte 0: header checksum mismatch")
    );
    let truncated = [raw_header(b"f", b'0', 1000, |_| {}).as_slice(), &[7u8; 100]].concat();
    assert!(
        err_of(&truncated, Limits::default()).contains("archive is truncated"),
        "{}",
        err_of(&truncated, Limits::default())
    );
    let half_block = &raw_header(b"f", b'0', 0, |_| {})[..300];
    assert_eq!(
        err_of(half_block, Limits::default()),
        "invalid tar at byte 300: archive is truncated"
    );
    let after_end = [[0u8; 512].as_slice(), &raw_header(b"f", b'0', 0, |_| {})].concat();
    assert_eq!(
        err_of(&after_end, Limits::default()),
        "invalid tar at byte 512: data after an end-of-archive block"
    );
    let sparse_pax = b"22 GNU.sparse.major=1\n";
    let pax = archive(&[
        &raw_header(b"PaxHeaders/s", b'x', 22, |_| {}),
        &padded(sparse_pax),
        &raw_header(b"s", b'0', 0, |_| {}),
    ]);
    assert_eq!(
        err_of(&pax, Limits::default()),
        "invalid tar at byte 0: GNU sparse files are not supported"
    );
    let bad_len = b"99 size=5\n";
    let pax = archive(&[
        &raw_header(b"PaxHeaders/s", b'x', 10, |_| {}),
        &padded(bad_len),
        &raw_header(b"s", b'0', 0, |_| {}),
    ]);
    assert_eq!(
        err_of(&pax, Limits::default()),
        "invalid tar at byte 0: malformed PAX record"
    );
    let nul = b"14 path=a\0b/c\n";
    let pax_nul = archive(&[
        &raw_header(b"PaxHeaders/x", b'x', nul.len() as u64, |_| {}),
        &padded(nul),
        &raw_header(b"x", b'0', 0, |_| {}),
    ]);
    assert_eq!(
        err_of(&pax_nul, Limits::default()),
        "invalid tar at byte 1024: entry name \"a\\0b/c\" contains a NUL byte"
    );
}

#[test]
fn limits_are_enforced_with_clear_errors() {
    let three = archive(&[
        &raw_header(b"a", b'0', 0, |_| {}),
        &raw_header(b"b", b'0', 0, |_| {}),
        &raw_header(b"c", b'0', 0, |_| {}),
    ]);
    let l = Limits {
        max_entries: 2,
        ..Limits::default()
    };
    assert_eq!(
        err_of(&three, l),
        "layer exceeds a limit: archive has more than 2 entries"
    );
    let l = Limits {
        max_bytes: 1000,
        ..Limits::default()
    };
    assert_eq!(
        err_of(&three, l),
        "layer exceeds a limit: archive is larger than 1000 bytes"
    );
    let long = vec![b'n'; 200];
    let data = [long.as_slice(), b"\0"].concat();
    let tar = archive(&[
        &raw_header(b"././@LongLink", b'L', data.len() as u64, |_| {}),
        &padded(&data),
        &raw_header(b"x", b'0', 0, |_| {}),
    ]);
    let l = Limits {
        max_path: 100,
        ..Limits::default()
    };
    assert_eq!(
        err_of(&tar, l),
        "layer exceeds a limit: entry name of 200 bytes is over the limit of 100"
    );
    let l = Limits {
        max_extension: 100,
        ..Limits::default()
    };
    assert_eq!(
        err_of(&tar, l),
        "layer exceeds a limit: extension header of 201 bytes is over the limit of 100"
    );
}

#[test]
fn empty_and_end_only_archives_have_no_entries() {
    assert!(read_all(b"", Limits::default()).unwrap().is_empty());
    assert!(
        read_all(&[0u8; 1024], Limits::default())
            .unwrap()
            .is_empty()
    );
    assert!(read_all(&[0u8; 512], Limits::default()).unwrap().is_empty());
}

fn header() -> impl Strategy<Value = (Header, Vec<u8>)> {
    let kind = prop_oneof![
        Just(Kind::File),
        Just(Kind::Dir),
        Just(Kind::Symlink),
        Just(Kind::Hardlink),
        Just(Kind::Fifo),
        Just(Kind::CharDevice)
    ];
    (
        kind,
        "[a-z0-9._/-]{1,300}",
        "[a-z0-9._/-]{0,200}",
        0u32..0o10000,
        prop_oneof![0u64..10, 0u64..=u64::from(u32::MAX) * 4],
        prop_oneof![0u64..10, 2_097_151u64..3_000_000],
        (
            prop_oneof![
                0i64..=0o777_7777_7777,
                8_589_934_592i64..100_000_000_000,
                -100_000i64..0
            ],
            prop_oneof![Just(0u32), 0u32..1_000_000_000],
        ),
        proptest::collection::vec(any::<u8>(), 0..1500),
        proptest::collection::vec(
            (
                "user\\.[a-z]{1,8}",
                proptest::collection::vec(any::<u8>(), 0..20),
            ),
            0..3,
        ),
        (0u32..4096, 0u32..4096),
    )
        .prop_map(
            |(kind, path, link, mode, uid, gid, (mtime, nsec), data, xattrs, (maj, min))| {
                let mut h = Header::new(kind, path.as_bytes());
                h.mode = mode;
                h.uid = uid;
                h.gid = gid;
                h.mtime = mtime;
                h.mtime_nsec = nsec;
                if matches!(kind, Kind::Symlink | Kind::Hardlink) {
                    h.link = link.into_bytes();
                }
                if kind == Kind::CharDevice {
                    h.dev_major = maj;
                    h.dev_minor = min;
                }
                // Names are unique in a real archive (PAX keys), so here too.
                let unique: std::collections::BTreeMap<String, Vec<u8>> =
                    xattrs.into_iter().collect();
                h.xattrs = unique
                    .into_iter()
                    .map(|(k, v)| (k.into_bytes(), v))
                    .collect();
                let data = if kind == Kind::File { data } else { Vec::new() };
                h.size = data.len() as u64;
                (h, data)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn write_then_read_is_the_identity(entries in proptest::collection::vec(header(), 0..6)) {
        let mut w = Writer::new(Vec::new());
        for (h, d) in &entries {
            w.append(h, &mut &d[..]).unwrap();
        }
        let bytes = w.finish().unwrap();
        prop_assert_eq!(bytes.len() % 512, 0);
        let back = read_all(&bytes, Limits::default()).unwrap();
        prop_assert_eq!(back, entries.clone());
        // Writing is deterministic.
        let mut w2 = Writer::new(Vec::new());
        for (h, d) in &entries {
            w2.append(h, &mut &d[..]).unwrap();
        }
        prop_assert_eq!(w2.finish().unwrap(), bytes);
    }
}

#[test]
fn compression_is_detected_by_magic_bytes() {
    let mut w = Writer::new(Vec::new());
    let mut h = Header::new(Kind::File, b"f");
    h.size = 4;
    w.append(&h, &mut &b"data"[..]).unwrap();
    let tar = w.finish().unwrap();
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, &tar).unwrap();
        e.finish().unwrap()
    };
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    for (name, bytes) in [("tar", &tar), ("gzip", &gz), ("zstd", &zst)] {
        let mut out = Vec::new();
        decompress(&bytes[..], &decompress::Limits::default())
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, tar, "{name}");
    }
    let err = decompress(
        &b"PK\x03\x04 a zip file"[..],
        &decompress::Limits::default(),
    )
    .err()
    .unwrap();
    assert_eq!(
        err.to_string(),
        "unknown layer compression: it starts with 50 4b 03 04 20 61 20 7a (expected tar, gzip or zstd)"
    );
    let err = decompress::for_media_type(&"application/vnd.oci.image.layer.v1.tar+bzip2".into())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported layer media type application/vnd.oci.image.layer.v1.tar+bzip2"
    );
}

fn drain_err(bytes: &[u8], limits: &decompress::Limits) -> String {
    let mut r = decompress(bytes, limits).unwrap();
    let e = std::io::copy(&mut r, &mut std::io::sink()).unwrap_err();
    e.into_inner().map(|i| i.to_string()).unwrap_or_default()
}

#[test]
fn decompression_limits() {
    let zeros = vec![0u8; 8 << 20];
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut e, &zeros).unwrap();
        e.finish().unwrap()
    };
    let ratio = decompress::Limits {
        max_ratio: 100,
        ratio_grace: 1 << 20,
        ..decompress::Limits::default()
    };
    assert!(
        drain_err(&gz, &ratio).starts_with("layer exceeds a limit: compression ratio above 100:1"),
        "{}",
        drain_err(&gz, &ratio)
    );
    let size = decompress::Limits {
        max_bytes: 1 << 20,
        ..decompress::Limits::default()
    };
    assert_eq!(
        drain_err(&gz, &size),
        "layer exceeds a limit: decompressed layer is larger than 1048576 bytes"
    );
    // A zstd frame that asks for a 256 MiB window is refused at 128 MiB.
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
    enc.set_parameter(zstd::zstd_safe::CParameter::WindowLog(28))
        .unwrap();
    enc.set_pledged_src_size(Some(300 << 20)).unwrap_or(());
    let mut w = enc;
    let chunk = vec![7u8; 1 << 20];
    for _ in 0..300 {
        std::io::Write::write_all(&mut w, &chunk).unwrap();
    }
    let big_window = w.finish().unwrap();
    let msg = drain_err(&big_window, &decompress::Limits::default());
    assert!(
        msg.contains("zstd window is larger than 2^27 bytes") || msg.contains("compression ratio"),
        "{msg}"
    );
}
