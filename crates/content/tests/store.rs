//! The store's behaviour, error path by error path.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use pluginctl_content::{Error, Store};
use pluginctl_oci::{Algorithm, Descriptor, Digest, Manifest, MediaType};
use pluginctl_testkit::pattern;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("content")).unwrap();
    (dir, store)
}

fn ingest_dirs(store: &Store) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(store.path().join("ingest"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn commit_publishes_a_read_only_verified_blob_and_removes_the_ingest() {
    let (_t, store) = store();
    let data = pattern(1, 3 * (1 << 20) + 123);
    let expected = Digest::of_bytes(&data);
    let mut w = store.writer("r1").unwrap();
    w.write_all(&data).unwrap();
    assert_eq!(w.offset(), data.len() as u64);
    let got = w.commit(Some(data.len() as u64), Some(&expected)).unwrap();
    assert_eq!(got, expected);
    let path = store.blob_path(&expected);
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o444
    );
    assert_eq!(store.read_all(&expected, u64::MAX).unwrap(), data);
    let mut f = store.open_blob(&expected).unwrap();
    f.seek(SeekFrom::Start(10)).unwrap();
    let mut ten = [0u8; 10];
    f.read_exact(&mut ten).unwrap();
    assert_eq!(ten, data[10..20]);
    assert_eq!(store.info(&expected).unwrap().size, data.len() as u64);
    assert!(ingest_dirs(&store).is_empty());
    assert_eq!(store.status("r1").unwrap(), None);
}

#[test]
fn ingest_from_a_reader_matches_write() {
    let (_t, store) = store();
    let data = pattern(2, 5 * (1 << 20) + 7);
    let mut w = store.writer("from-reader").unwrap();
    let n = w.ingest_from(&mut &data[..]).unwrap();
    assert_eq!(n, data.len() as u64);
    assert_eq!(w.commit(None, None).unwrap(), Digest::of_bytes(&data));
}

#[test]
fn digest_mismatch_names_both_digests_and_leaves_nothing_visible() {
    let (_t, store) = store();
    let wrong = Digest::of_bytes(b"something else");
    let mut w = store.writer("bad").unwrap();
    w.write_all(b"payload").unwrap();
    let err = w.commit(Some(7), Some(&wrong)).unwrap_err();
    let found = Digest::of_bytes(b"payload");
    assert_eq!(
        err.to_string(),
        format!("digest mismatch for ingest \"bad\": expected {wrong}, found {found}")
    );
    assert!(!store.contains(&found).unwrap());
    assert!(!store.contains(&wrong).unwrap());
    assert!(store.list().unwrap().is_empty());
    assert!(
        ingest_dirs(&store).is_empty(),
        "known-bad bytes are not kept"
    );
}

#[test]
fn short_size_keeps_the_ingest_for_resume_and_long_size_discards_it() {
    let (_t, store) = store();
    let mut w = store.writer("short").unwrap();
    w.write_all(b"abc").unwrap();
    let err = w.commit(Some(5), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "size mismatch for ingest \"short\": expected 5 bytes, found 3"
    );
    let mut w = store.writer("short").unwrap();
    assert_eq!(w.offset(), 3);
    w.write_all(b"de").unwrap();
    assert_eq!(
        w.commit(Some(5), Some(&Digest::of_bytes(b"abcde")))
            .unwrap(),
        Digest::of_bytes(b"abcde")
    );

    let mut w = store.writer("long").unwrap();
    w.write_all(b"abcdef").unwrap();
    assert!(matches!(
        w.commit(Some(5), None),
        Err(Error::SizeMismatch { found: 6, .. })
    ));
    assert_eq!(store.status("long").unwrap(), None);
}

#[test]
fn total_is_enforced_and_remembered() {
    let (_t, store) = store();
    let mut w = store.writer("t").unwrap();
    w.set_total(4).unwrap();
    w.write_all(b"ab").unwrap();
    let err = w.write_all(b"cde").unwrap_err();
    assert_eq!(
        err.to_string(),
        "ingest \"t\" would exceed its total of 4 bytes"
    );
    let err = w.ingest_from(&mut &b"xyz"[..]).unwrap_err();
    assert!(matches!(err, Error::ExceedsTotal { total: 4, .. }), "{err}");
    drop(w);
    let status = store.status("t").unwrap().unwrap();
    assert_eq!((status.offset, status.total), (2, Some(4)));
    let mut w = store.writer("t").unwrap();
    assert_eq!(w.total(), Some(4));
    assert_eq!(
        w.set_total(9).unwrap_err().to_string(),
        "ingest \"t\" was started for 4 bytes, not 9"
    );
    w.write_all(b"cd").unwrap();
    // The recorded total stands in for a missing expected size.
    assert_eq!(w.commit(None, None).unwrap(), Digest::of_bytes(b"abcd"));
}

#[test]
fn a_second_writer_on_the_same_reference_is_busy_until_the_first_is_gone() {
    let (_t, store) = store();
    let w = store.writer("shared").unwrap();
    let err = store.writer("shared").unwrap_err();
    assert_eq!(
        err.to_string(),
        "ingest \"shared\" is busy: another writer holds it"
    );
    assert!(matches!(store.abort("shared"), Err(Error::Busy { .. })));
    // Other references are independent.
    drop(store.writer("other").unwrap());
    drop(w);
    let w = store.writer("shared").unwrap();
    drop(w);
    store.abort("shared").unwrap();
    assert_eq!(store.status("shared").unwrap(), None);
}

#[test]
fn a_waiting_writer_takes_over_after_a_commit() {
    let (_t, store) = store();
    let mut first = store.writer("wait").unwrap();
    first.write_all(b"one").unwrap();
    let s2 = store.clone();
    let waiter = std::thread::spawn(move || {
        let mut w = s2.writer_wait("wait").unwrap();
        // The first writer committed and removed its ingest: start afresh.
        let start = w.offset();
        w.write_all(b"two").unwrap();
        (start, w.commit(None, None).unwrap())
    });
    // Whatever the scheduling, the waiter cannot get in before this commit.
    first.commit(None, None).unwrap();
    let (start, digest) = waiter.join().unwrap();
    assert_eq!(start, 0);
    assert_eq!(digest, Digest::of_bytes(b"two"));
    assert!(store.contains(&Digest::of_bytes(b"one")).unwrap());
}

#[test]
fn committing_existing_content_keeps_one_copy() {
    let (_t, store) = store();
    let d1 = store.write_blob(b"same", None).unwrap();
    let mut w = store.writer("again").unwrap();
    w.write_all(b"same").unwrap();
    let d2 = w.commit(Some(4), Some(&d1)).unwrap();
    assert_eq!(d1, d2);
    assert_eq!(store.list().unwrap().len(), 1);
    assert!(ingest_dirs(&store).is_empty());
    assert_eq!(store.write_blob(b"same", Some(&d1)).unwrap(), d1);
}

#[test]
fn sha512_expectations_are_verified_with_sha512() {
    let (_t, store) = store();
    let want = Digest::of_bytes_with(Algorithm::Sha512, b"five!");
    let mut w = store.writer("512").unwrap();
    w.write_all(b"five!").unwrap();
    assert_eq!(w.commit(Some(5), Some(&want)).unwrap(), want);
    assert_eq!(store.read_all(&want, 5).unwrap(), b"five!");
    assert!(
        store
            .blob_path(&want)
            .to_string_lossy()
            .contains("blobs/sha512/")
    );
}

#[test]
fn missing_blobs_are_named_in_errors() {
    let (_t, store) = store();
    let d = Digest::of_bytes(b"absent");
    let want = format!("blob {d} not found");
    assert_eq!(store.info(&d).unwrap_err().to_string(), want);
    assert_eq!(store.open_blob(&d).unwrap_err().to_string(), want);
    assert_eq!(store.read_all(&d, 10).unwrap_err().to_string(), want);
    assert_eq!(store.delete(&d).unwrap_err().to_string(), want);
    assert!(!store.contains(&d).unwrap());
}

#[test]
fn read_all_enforces_the_limit_and_detects_corruption() {
    let (_t, store) = store();
    let d = store.write_blob(b"0123456789", None).unwrap();
    assert_eq!(
        store.read_all(&d, 9).unwrap_err().to_string(),
        format!("blob {d} is 10 bytes, over the limit of 9")
    );
    corrupt(&store, &d, b"0123456780");
    let err = store.read_all(&d, 10).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
}

fn corrupt(store: &Store, d: &Digest, bytes: &[u8]) {
    let path = store.blob_path(d);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&path, bytes).unwrap();
}

#[test]
fn fsck_reports_corrupt_blobs_and_stray_files() {
    let (_t, store) = store();
    let good = store.write_blob(b"good", None).unwrap();
    let bad = store.write_blob(b"bad", None).unwrap();
    corrupt(&store, &bad, b"bAd");
    fs::write(store.path().join("blobs/sha256/not-a-digest"), b"x").unwrap();
    let report = store.fsck().unwrap();
    assert_eq!(report.checked, 2);
    assert_eq!(report.bytes, 7);
    assert_eq!(report.corrupt.len(), 1);
    assert_eq!(report.corrupt[0].digest, bad);
    assert_eq!(report.corrupt[0].found, Digest::of_bytes(b"bAd"));
    assert_eq!(report.stray.len(), 1);
    assert!(report.stray[0].ends_with("not-a-digest"));
    // list() shows only real blobs.
    let listed: Vec<Digest> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|i| i.digest)
        .collect();
    let mut want = vec![good, bad];
    want.sort();
    assert_eq!(listed, want);
}

#[test]
fn gc_keeps_what_roots_reach_through_manifests_and_frees_the_rest() {
    let (_t, store) = store();
    let config = store
        .write_blob(br#"{"Description":"plugin"}"#, None)
        .unwrap();
    let layer = store.write_blob(b"\x1f\x8blayer-bytes", None).unwrap();
    let manifest = Manifest::docker(
        Descriptor::new(MediaType::Plugin, config.clone(), 24),
        vec![Descriptor::new(
            MediaType::DockerLayerGzip,
            layer.clone(),
            13,
        )],
    );
    let m = store.write_blob(&manifest.to_vec(), None).unwrap();
    let orphan = store.write_blob(b"orphan", None).unwrap();
    let lone_root = store.write_blob(b"{not json at all", None).unwrap();
    let missing = Digest::of_bytes(b"never stored");

    // An idle ingest and an active one.
    let mut idle = store.writer("idle").unwrap();
    idle.write_all(b"stale").unwrap();
    drop(idle);
    let active = store.writer("active").unwrap();

    let report = store
        .gc(
            &[m.clone(), lone_root.clone(), missing.clone()],
            Duration::ZERO,
        )
        .unwrap();
    let removed: Vec<&Digest> = report.removed.iter().map(|i| &i.digest).collect();
    assert_eq!(removed, [&orphan]);
    assert_eq!(report.kept, 4);
    assert_eq!(report.missing_roots, [missing]);
    assert_eq!(report.removed_ingests, ["idle"]);
    assert_eq!(report.freed_bytes, 6 + 5);
    for d in [&m, &config, &layer, &lone_root] {
        assert!(store.contains(d).unwrap(), "{d} was reachable");
    }
    assert!(!store.contains(&orphan).unwrap());
    assert_eq!(store.ingests().unwrap().len(), 1, "the active ingest stays");
    drop(active);

    // With no roots, everything goes; a young ingest survives a long max age.
    drop(store.writer("young").unwrap());
    let report = store.gc(&[], Duration::from_secs(3600)).unwrap();
    assert_eq!(report.removed.len(), 4);
    assert!(store.list().unwrap().is_empty());
    assert_eq!(report.removed_ingests, Vec::<String>::new());
}

#[test]
fn gc_removes_trash_left_by_a_crashed_remover() {
    let (_t, store) = store();
    let trash = store.path().join("ingest/.trash-abc-1");
    fs::create_dir_all(&trash).unwrap();
    fs::write(trash.join("data"), b"12345").unwrap();
    let report = store.gc(&[], Duration::from_secs(3600)).unwrap();
    assert_eq!(report.freed_bytes, 5);
    assert!(!trash.exists());
}

#[test]
fn ingests_are_listed_with_their_state() {
    let (_t, store) = store();
    let mut a = store.writer("a").unwrap();
    a.write_all(b"xy").unwrap();
    a.flush().unwrap();
    let mut b = store.writer("b").unwrap();
    b.set_total(10).unwrap();
    let all = store.ingests().unwrap();
    let summary: Vec<(String, u64, Option<u64>)> = all
        .into_iter()
        .map(|s| (s.reference, s.offset, s.total))
        .collect();
    assert_eq!(
        summary,
        [("a".to_owned(), 2, None), ("b".to_owned(), 0, Some(10))]
    );
    drop((a, b));
}

#[test]
fn truncate_rewinds_and_rehashes() {
    let (_t, store) = store();
    let big = pattern(3, (1 << 20) + 10);
    let mut w = store.writer("trunc").unwrap();
    w.write_all(&big).unwrap();
    w.truncate(5).unwrap();
    assert_eq!(w.offset(), 5);
    w.write_all(b"tail").unwrap();
    let mut want = big[..5].to_vec();
    want.extend_from_slice(b"tail");
    assert_eq!(
        w.commit(None, Some(&Digest::of_bytes(&want))).unwrap(),
        Digest::of_bytes(&want)
    );
}

#[test]
fn bad_references_and_collisions_are_refused() {
    let (_t, store) = store();
    for bad in ["", "a\nb", "nul\0"] {
        let err = store.writer(bad).unwrap_err();
        assert!(matches!(err, Error::InvalidReference(_)), "{bad:?}: {err}");
    }
    // A ref file that names another reference: a tampered store.
    drop(store.writer("mine").unwrap());
    let dir = store
        .path()
        .join("ingest")
        .join(Digest::of_bytes(b"mine").encoded());
    fs::write(dir.join("ref"), "theirs").unwrap();
    let err = store.writer("mine").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "ingest directory {} belongs to \"theirs\", not \"mine\"",
            dir.display()
        )
    );
    assert!(matches!(
        store.status("mine"),
        Err(Error::ReferenceCollision { .. })
    ));
    // A ref cut short by a crash is completed, not refused.
    fs::write(dir.join("ref"), "mi").unwrap();
    drop(store.writer("mine").unwrap());
    assert_eq!(fs::read_to_string(dir.join("ref")).unwrap(), "mine");
}

#[test]
fn io_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    fs::write(&file, b"").unwrap();
    let err = Store::open(&file.join("content")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("creating {}", file.join("content/blobs/sha256").display())
    );
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("Not a directory"), "{source}");
}

#[test]
fn a_failing_source_is_reported_and_keeps_what_was_read() {
    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "peer went away",
                ));
            }
            let n = self.0.min(buf.len()).min(1000);
            buf[..n].fill(b'x');
            self.0 -= n;
            Ok(n)
        }
    }
    let (_t, store) = store();
    let mut w = store.writer("net").unwrap();
    let err = w.ingest_from(&mut Failing(2500)).unwrap_err();
    assert_eq!(err.to_string(), "reading the source of ingest \"net\"");
    assert_eq!(w.offset(), 2500);
    drop(w);
    assert_eq!(store.status("net").unwrap().unwrap().offset, 2500);
}

#[test]
fn bytes_added_behind_the_writers_back_are_caught_at_commit() {
    let (_t, store) = store();
    let mut w = store.writer("tampered").unwrap();
    w.write_all(b"honest").unwrap();
    w.flush().unwrap();
    let data = store
        .path()
        .join("ingest")
        .join(Digest::of_bytes(b"tampered").encoded())
        .join("data");
    fs::OpenOptions::new()
        .append(true)
        .open(&data)
        .unwrap()
        .write_all(b"+evil")
        .unwrap();
    let err = w.commit(None, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ingest \"tampered\" holds 11 bytes on disk, but 6 were written"
    );
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn an_ingest_removed_under_its_writer_is_not_published() {
    let (_t, store) = store();
    let mut w = store.writer("lost").unwrap();
    w.write_all(b"bytes").unwrap();
    w.flush().unwrap();
    let dir = store
        .path()
        .join("ingest")
        .join(Digest::of_bytes(b"lost").encoded());
    fs::remove_dir_all(&dir).unwrap();
    let err = w.commit(None, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ingest \"lost\" was removed while it was being written"
    );
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn gc_stops_at_a_manifest_that_does_not_parse_rather_than_sweep_its_children() {
    let (_t, store) = store();
    let layer = store.write_blob(b"layer", None).unwrap();
    let broken = store
        .write_blob(b"{\"schemaVersion\":2,\"config\":", None)
        .unwrap();
    let mut entry = Descriptor::new(MediaType::OciManifest, broken.clone(), 30);
    entry.platform = Some(pluginctl_oci::Platform::host());
    let index = pluginctl_oci::Index::oci(vec![entry]);
    let root = store.write_blob(&index.to_vec(), None).unwrap();
    let err = store.gc(&[root], Duration::ZERO).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("blob {broken} is not a valid manifest")
    );
    assert!(
        store.contains(&layer).unwrap(),
        "nothing is swept when gc stops"
    );
}

#[test]
fn gc_follows_a_root_manifest_with_leading_whitespace() {
    let (_t, store) = store();
    let layer = store.write_blob(b"layer", None).unwrap();
    let config = store.write_blob(b"{}", None).unwrap();
    let manifest = Manifest::docker(
        Descriptor::new(MediaType::Plugin, config.clone(), 2),
        vec![Descriptor::new(
            MediaType::DockerLayerGzip,
            layer.clone(),
            5,
        )],
    );
    let mut bytes = b" \n".to_vec();
    bytes.extend_from_slice(&manifest.to_vec());
    let root = store.write_blob(&bytes, None).unwrap();
    let report = store.gc(&[root], Duration::ZERO).unwrap();
    assert!(report.removed.is_empty(), "{report:?}");
    assert_eq!(report.kept, 3);
}

#[test]
fn recommitting_repairs_a_corrupt_copy() {
    let (_t, store) = store();
    let d = store.write_blob(b"precious", None).unwrap();
    corrupt(&store, &d, b"prexious");
    assert_eq!(store.fsck().unwrap().corrupt.len(), 1);
    let mut w = store.writer("repair").unwrap();
    w.write_all(b"precious").unwrap();
    w.commit(Some(8), Some(&d)).unwrap();
    assert_eq!(store.fsck().unwrap().corrupt, vec![]);
    assert_eq!(store.read_all(&d, 8).unwrap(), b"precious");
}
