//! Property: whatever the sequence of writes, flushes, drops (resumes) and
//! reader copies, the committed blob is the concatenation of what was written.

use std::io::Write;

use pluginctl_content::Store;
use pluginctl_oci::Digest;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Write(usize),
    Copy(usize),
    Flush,
    Resume,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..70_000).prop_map(Op::Write),
        1 => (0usize..2_500_000).prop_map(Op::Write),
        2 => (0usize..1_500_000).prop_map(Op::Copy),
        1 => Just(Op::Flush),
        2 => Just(Op::Resume),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_sequence_of_writes_and_resumes_hashes_the_concatenation(ops in proptest::collection::vec(op(), 1..12), seed in any::<u8>()) {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let mut all = Vec::new();
        let mut w = store.writer("p").unwrap();
        for (i, op) in ops.iter().enumerate() {
            match op {
                Op::Write(n) | Op::Copy(n) => {
                    let bytes: Vec<u8> = (0..*n).map(|k| k.to_le_bytes()[0] ^ seed ^ i.to_le_bytes()[0]).collect();
                    if matches!(op, Op::Write(_)) {
                        w.write_all(&bytes).unwrap();
                    } else {
                        prop_assert_eq!(w.ingest_from(&mut &bytes[..]).unwrap(), *n as u64);
                    }
                    all.extend_from_slice(&bytes);
                }
                Op::Flush => w.flush().unwrap(),
                Op::Resume => {
                    drop(w);
                    w = store.writer("p").unwrap();
                }
            }
            prop_assert_eq!(w.offset(), all.len() as u64);
        }
        let d = w.commit(Some(all.len() as u64), None).unwrap();
        prop_assert_eq!(&d, &Digest::of_bytes(&all));
        prop_assert_eq!(store.read_all(&d, u64::MAX).unwrap(), all);
    }
}
