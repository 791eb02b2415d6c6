//! Several processes on one store: a writer killed with SIGKILL mid-ingest,
//! and writers racing on the same and on different references.
//!
//! Each test re-runs this test binary as its child processes, selecting the
//! same test with `--exact`; the child sees `PLUGINCTL_CONTENT_CHILD` and
//! plays the writer instead of the parent.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pluginctl_content::Store;
use pluginctl_oci::Digest;
use pluginctl_testkit::pattern;

const ROLE: &str = "PLUGINCTL_CONTENT_CHILD";

/// The role this process plays: `None` in the parent.
fn role() -> Option<Vec<String>> {
    std::env::var(ROLE)
        .ok()
        .map(|r| r.split(',').map(str::to_owned).collect())
}

fn spawn_child(test: &str, role: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Child: ingest `len` bytes of `seed` under `reference` in 64 KiB writes,
/// flushing each, then wait (uncommitted) until stdin closes or we are killed.
fn child_slow_writer(store: &Path, reference: &str, seed: u64, len: usize) {
    let store = Store::open(store).unwrap();
    let data = pattern(seed, len);
    let mut w = store.writer(reference).unwrap();
    eprintln!("child: started at {}", w.offset());
    for chunk in data.chunks(64 << 10) {
        w.write_all(chunk).unwrap();
        w.flush().unwrap();
    }
    eprintln!("child: wrote everything");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// Child: take the reference (waiting for others), finish the ingest from
/// wherever it stands, and commit.
fn child_finisher(store: &Path, reference: &str, seed: u64, len: usize) {
    let store = Store::open(store).unwrap();
    let data = pattern(seed, len);
    let mut w = store.writer_wait(reference).unwrap();
    let at = usize::try_from(w.offset()).unwrap();
    w.write_all(&data[at..]).unwrap();
    let d = w
        .commit(Some(len as u64), Some(&Digest::of_bytes(&data)))
        .unwrap();
    eprintln!("child: committed {d}");
}

fn wait_for_offset(store: &Store, reference: &str, min: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = store.status(reference).unwrap()
            && s.offset >= min
        {
            return s.offset;
        }
        assert!(
            Instant::now() < deadline,
            "the child never wrote {min} bytes"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits for every child; a failed one fails the test with its stderr.
fn wait_all(children: Vec<Child>) {
    for mut c in children {
        let mut err = String::new();
        c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert!(c.wait().unwrap().success(), "child failed: {err}");
    }
}

#[test]
fn sigkill_mid_ingest_then_resume() {
    const LEN: usize = 48 << 20;
    if let Some(r) = role() {
        child_slow_writer(Path::new(&r[0]), "killed", 7, LEN);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let mut child = spawn_child(
        "sigkill_mid_ingest_then_resume",
        &tmp.path().to_string_lossy(),
    );
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // Wait until the child holds the writer and has written something.
    assert!(
        lines
            .next()
            .unwrap()
            .unwrap()
            .starts_with("child: started at 0")
    );
    wait_for_offset(&store, "killed", 1);
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());

    let left = store
        .status("killed")
        .unwrap()
        .expect("the ingest survives the kill");
    assert!(
        left.offset > 0 && left.offset <= LEN as u64,
        "offset {}",
        left.offset
    );
    // The kernel dropped the dead writer's lock: no Busy here.
    let data = pattern(7, LEN);
    let mut w = store.writer("killed").unwrap();
    assert_eq!(w.offset(), left.offset);
    let at = usize::try_from(w.offset()).unwrap();
    w.write_all(&data[at..]).unwrap();
    let d = w
        .commit(Some(LEN as u64), Some(&Digest::of_bytes(&data)))
        .unwrap();
    assert_eq!(store.read_all(&d, LEN as u64).unwrap(), data);
    assert!(store.ingests().unwrap().is_empty());
}

#[test]
fn writers_in_several_processes_on_one_reference_produce_one_blob() {
    const LEN: usize = 6 << 20;
    if let Some(r) = role() {
        child_finisher(Path::new(&r[0]), "contended", 11, LEN);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let children: Vec<Child> = (0..4)
        .map(|_| {
            spawn_child(
                "writers_in_several_processes_on_one_reference_produce_one_blob",
                &tmp.path().to_string_lossy(),
            )
        })
        .collect();
    wait_all(children);
    let data = pattern(11, LEN);
    let list = store.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].digest, Digest::of_bytes(&data));
    assert_eq!(store.read_all(&list[0].digest, LEN as u64).unwrap(), data);
    assert!(store.ingests().unwrap().is_empty());
    assert_eq!(store.fsck().unwrap().corrupt, vec![]);
}

#[test]
fn writers_in_several_processes_on_different_references() {
    const LEN: usize = 3 << 20;
    if let Some(r) = role() {
        let seed: u64 = r[1].parse().unwrap();
        child_finisher(Path::new(&r[0]), &format!("ref-{seed}"), seed, LEN);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let name = "writers_in_several_processes_on_different_references";
    let children: Vec<Child> = (1..=4u64)
        .map(|seed| spawn_child(name, &format!("{},{seed}", tmp.path().display())))
        .collect();
    wait_all(children);
    let mut want: Vec<Digest> = (1..=4u64)
        .map(|s| Digest::of_bytes(&pattern(s, LEN)))
        .collect();
    want.sort();
    let got: Vec<Digest> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|i| i.digest)
        .collect();
    assert_eq!(got, want);
    assert_eq!(store.fsck().unwrap().corrupt, vec![]);
}

#[test]
fn a_busy_reference_is_reported_across_processes() {
    if let Some(r) = role() {
        child_slow_writer(Path::new(&r[0]), "held", 3, 1000);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let mut child = spawn_child(
        "a_busy_reference_is_reported_across_processes",
        &tmp.path().to_string_lossy(),
    );
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    assert!(lines.next().unwrap().unwrap().starts_with("child: started"));
    assert_eq!(lines.next().unwrap().unwrap(), "child: wrote everything");
    let err = store.writer("held").unwrap_err();
    assert_eq!(
        err.to_string(),
        "ingest \"held\" is busy: another writer holds it"
    );
    // Closing its stdin lets the child exit normally; the lock goes with it.
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    let w = store.writer("held").unwrap();
    assert_eq!(w.offset(), 1000);
}
