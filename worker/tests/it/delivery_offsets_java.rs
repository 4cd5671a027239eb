//! Java reads the offset file pgseam writes: `ObjectInputStream` (what Connect's
//! `FileOffsetBackingStore.load()` uses) gets the HashMap back, and every value is byte for byte
//! what Debezium's `getOffset()` map printed by `JsonConverter` would be.
//!
//! Needs `javac`/`java` and the reference harness's jars (`$DBZPEER_HOME/libs`, default
//! .dbzpeer/libs in the repo, set up by scripts/dev-env.sh install). Without them the test says so and fails, unless
//! `PGSEAM_SKIP_JAVA_TESTS=1` is set.

use std::path::Path;

use pgseam::offsets::{offset_key, ConnectorOffset, FileOffsetStore, StreamOffset};
use pgseam_model::Lsn;
use pgseam_testkit::JavaHarness;

#[test]
fn java_reads_what_pgseam_writes() {
    let Some(java) = JavaHarness::find("connect-json-4.3.0.jar") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("offsets.dat");
    let mut store = FileOffsetStore::open(&path).unwrap();
    let offsets = [
        (
            offset_key("inventory", "dbz"),
            ConnectorOffset::Streaming(StreamOffset::after_commit(
                Lsn(0x1_2345_6789),
                123_456,
                1_795_497_527_191_882,
            )),
        ),
        (
            offset_key("snapping", "pfx \"q\"/é"),
            ConnectorOffset::SnapshotIncomplete {
                ts_usec: 1_795_497_504_230_084,
            },
        ),
        (
            offset_key("snapped", "s"),
            ConnectorOffset::SnapshotCompleted {
                lsn: Lsn(70_322_592),
                tx_id: Some(728),
                ts_usec: 1,
            },
        ),
        (
            offset_key("debezium-mid-tx", "m"),
            ConnectorOffset::Streaming(StreamOffset {
                lsn: Lsn(70_323_232),
                lsn_proc: Some(Lsn(70_323_232)),
                lsn_commit: Some(Lsn(70_323_000)),
                tx_id: Some(729),
                ts_usec: 5,
                message_type: Some("DELETE".into()),
                skip: None,
            }),
        ),
    ];
    for (key, offset) in &offsets {
        store.put(key, offset).unwrap();
    }

    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/java/ReadOffsets.java");
    let stdout = java
        .compile(&source, &dir.path().join("classes"), "ReadOffsets")
        .run([&path]);
    let mut seen = 0;
    for line in stdout.lines() {
        let parts: Vec<&str> = line.split('\t').collect();
        assert_eq!(parts.len(), 3, "{line}");
        let (key_text, value, rewritten) = (parts[0], parts[1], parts[2]);
        let (key, _) = offsets
            .iter()
            .find(|(key, _)| key.encode() == key_text)
            .unwrap_or_else(|| panic!("Java read an unknown key {key_text}"));
        assert_eq!(
            value, rewritten,
            "value of {key:?}: pgseam's field order differs from Debezium's"
        );
        seen += 1;
    }
    assert_eq!(seen, offsets.len(), "{stdout}");
}
