//! Decodes bytes captured from a real PostgreSQL 15 (see `tests/fixtures/README.md`).
//!
//! Each `tests/fixtures/*.hex` file is one pgoutput message (or, for `frame_*`, one CopyData
//! payload of the replication connection): `#` comment lines, `key: value` header lines giving
//! the decode context, then the bytes in hex.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use pgoutput::frame::ReplicationFrame;
use pgoutput::message::{
    DecodeContext, LogicalReplicationMessage, OldTuple, RelationColumn, ReplicaIdentity, TupleData,
    TupleValue, TRUNCATE_CASCADE, TRUNCATE_RESTART_IDENTITY,
};
use pgoutput::{DecodeError, Lsn};

/// One captured fixture.
struct Fixture {
    /// `None` for `frame_*` fixtures (a CopyData payload, not a pgoutput message).
    context: Option<DecodeContext>,
    bytes: Bytes,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn parse_hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let pairs = digits.chunks_exact(2);
    assert!(pairs.remainder().is_empty(), "odd number of hex digits");
    pairs
        .map(|pair| {
            let pair = std::str::from_utf8(pair).expect("ascii");
            u8::from_str_radix(pair, 16).unwrap_or_else(|_| panic!("bad hex {pair:?}"))
        })
        .collect()
}

fn load(name: &str) -> Fixture {
    let path = fixtures_dir().join(format!("{name}.hex"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut protocol_version = None;
    let mut in_streamed_transaction = None;
    let mut is_frame = false;
    let mut hex = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once(": ") {
            Some(("protocol_version", value)) => {
                protocol_version = Some(value.parse().expect("protocol_version"))
            }
            Some(("in_streamed_transaction", value)) => {
                in_streamed_transaction = Some(value.parse().expect("in_streamed_transaction"))
            }
            Some(("frame", "copy_data")) => is_frame = true,
            Some((key, _)) => panic!("{name}: unknown header {key}"),
            None => hex.push_str(line),
        }
    }
    let context = if is_frame {
        None
    } else {
        Some(DecodeContext {
            protocol_version: protocol_version.expect("protocol_version header"),
            in_streamed_transaction: in_streamed_transaction.expect("in_streamed_transaction"),
        })
    };
    Fixture {
        context,
        bytes: Bytes::from(parse_hex(&hex)),
    }
}

fn all_fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures dir")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "hex"))
        .map(|path| {
            path.file_stem()
                .expect("stem")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn decode(name: &str) -> LogicalReplicationMessage {
    let fixture = load(name);
    let context = fixture.context.expect("a message fixture");
    LogicalReplicationMessage::decode(fixture.bytes, &context)
        .unwrap_or_else(|err| panic!("{name}: {err}"))
}

fn text(value: &str) -> TupleValue {
    TupleValue::Text(Bytes::copy_from_slice(value.as_bytes()))
}

/// `"0/1989D20"` as PostgreSQL prints an LSN.
fn lsn(printed: &str) -> Lsn {
    let (high, low) = printed.split_once('/').expect("LSN");
    (u64::from_str_radix(high, 16).expect("hex") << 32) | u64::from_str_radix(low, 16).expect("hex")
}

// Relation and type OIDs of this capture (see README.md).
const ITEMS_OID: u32 = 16397;
const AUDIT_OID: u32 = 16404;
const MOOD_OID: u32 = 16390;
const BULK_OID: u32 = 16428;
const SCRATCH_A_OID: u32 = 16410;
const SCRATCH_B_OID: u32 = 16417;

#[test]
fn every_fixture_decodes_and_every_strict_prefix_fails() {
    let names = all_fixture_names();
    assert!(names.len() >= 31, "fixtures missing: {names:?}");
    for name in names {
        let fixture = load(&name);
        match fixture.context {
            Some(context) => {
                let decoded = LogicalReplicationMessage::decode(fixture.bytes.clone(), &context);
                assert!(decoded.is_ok(), "{name}: {decoded:?}");
                for len in 0..fixture.bytes.len() {
                    let prefix = fixture.bytes.slice(..len);
                    assert!(
                        LogicalReplicationMessage::decode(prefix, &context).is_err(),
                        "{name}: prefix of {len} bytes decoded"
                    );
                }
                let mut extended = fixture.bytes.to_vec();
                extended.push(0);
                assert!(
                    matches!(
                        LogicalReplicationMessage::decode(Bytes::from(extended), &context),
                        Err(DecodeError::TrailingBytes { count: 1, .. })
                    ),
                    "{name}: trailing byte accepted"
                );
            }
            None => {
                let decoded = ReplicationFrame::decode(fixture.bytes.clone());
                assert!(decoded.is_ok(), "{name}: {decoded:?}");
                // An XLogData body is "the rest", so only prefixes cutting the header fail.
                let header_len = fixture.bytes.len().min(25);
                for len in 0..header_len {
                    assert!(
                        ReplicationFrame::decode(fixture.bytes.slice(..len)).is_err(),
                        "{name}: prefix of {len} bytes decoded"
                    );
                }
            }
        }
    }
}

#[test]
fn every_fixture_is_in_the_fuzz_seed_corpus() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode_message");
    for name in all_fixture_names() {
        let seed = std::fs::read(corpus.join(&name)).unwrap_or_else(|e| panic!("seed {name}: {e}"));
        assert_eq!(
            seed,
            load(&name).bytes,
            "seed {name} differs from its fixture"
        );
    }
}

#[test]
fn begin() {
    assert_eq!(
        decode("begin"),
        LogicalReplicationMessage::Begin {
            final_lsn: lsn("0/1989E20"),
            commit_ts_us: 0x0003_03fd_470c_c387,
            xid: 745
        }
    );
}

#[test]
fn commit() {
    assert_eq!(
        decode("commit"),
        LogicalReplicationMessage::Commit {
            flags: 0,
            commit_lsn: lsn("0/1989E20"),
            end_lsn: lsn("0/1989E50"),
            commit_ts_us: 0x0003_03fd_470c_c387
        }
    );
}

#[test]
fn origin() {
    assert_eq!(
        decode("origin"),
        LogicalReplicationMessage::Origin {
            commit_lsn: lsn("0/ABCDEF"),
            name: "upstream_origin".into()
        }
    );
}

fn column(is_key: bool, name: &str, type_oid: u32, type_modifier: i32) -> RelationColumn {
    RelationColumn {
        is_key,
        name: name.into(),
        type_oid,
        type_modifier,
    }
}

#[test]
fn relation_with_enum_numeric_and_primary_key() {
    assert_eq!(
        decode("relation_items"),
        LogicalReplicationMessage::Relation {
            xid: None,
            relation_id: ITEMS_OID,
            namespace: "public".into(),
            name: "items".into(),
            replica_identity: ReplicaIdentity::Default,
            columns: vec![
                column(true, "id", 23, -1),
                column(false, "name", 25, -1),
                column(false, "feeling", MOOD_OID, -1),
                column(false, "doc", 25, -1),
                // numeric(10,2): ((10 << 16) | 2) + VARHDRSZ
                column(false, "price", 1700, (10 << 16 | 2) + 4),
            ],
        }
    );
}

#[test]
fn relation_with_replica_identity_full_marks_every_column_as_key() {
    assert_eq!(
        decode("relation_replica_identity_full"),
        LogicalReplicationMessage::Relation {
            xid: None,
            relation_id: AUDIT_OID,
            namespace: "public".into(),
            name: "audit".into(),
            replica_identity: ReplicaIdentity::Full,
            columns: vec![column(true, "id", 23, -1), column(true, "note", 25, -1)],
        }
    );
}

#[test]
fn type_of_an_enum() {
    assert_eq!(
        decode("type_enum"),
        LogicalReplicationMessage::Type {
            xid: None,
            type_id: MOOD_OID,
            namespace: "public".into(),
            name: "mood".into()
        }
    );
}

#[test]
fn insert_in_text_format_carries_the_full_toasted_value() {
    let LogicalReplicationMessage::Insert {
        xid,
        relation_id,
        new,
    } = decode("insert_text_toasted")
    else {
        panic!("expected Insert");
    };
    assert_eq!((xid, relation_id), (None, ITEMS_OID));
    assert_eq!(new.0.len(), 5);
    assert_eq!(new.0[..3], [text("1"), text("first"), text("happy")]);
    assert_eq!(new.0[3], text(&"toast-me-".repeat(2000)));
    assert_eq!(new.0[4], text("12.50"));
}

#[test]
fn insert_in_binary_format() {
    let LogicalReplicationMessage::Insert { new, .. } = decode("insert_binary") else {
        panic!("expected Insert");
    };
    let binary = |bytes: &[u8]| TupleValue::Binary(Bytes::copy_from_slice(bytes));
    assert_eq!(new.0[0], binary(&1_i32.to_be_bytes()));
    assert_eq!(new.0[1], binary(b"first"));
    assert_eq!(new.0[2], binary(b"happy"));
    assert_eq!(new.0[3], binary("toast-me-".repeat(2000).as_bytes()));
    // numeric send format: ndigits 2, weight 1... here 12.50 = digits [12, 5000], weight 0, scale 2
    assert_eq!(
        new.0[4],
        binary(&[0, 2, 0, 0, 0, 0, 0, 2, 0, 12, 0x13, 0x88])
    );
}

#[test]
fn update_leaves_the_unchanged_toasted_value_out() {
    assert_eq!(
        decode("update_unchanged_toast"),
        LogicalReplicationMessage::Update {
            xid: None,
            relation_id: ITEMS_OID,
            old: None,
            new: TupleData(vec![
                text("1"),
                text("renamed"),
                text("happy"),
                TupleValue::UnchangedToast,
                text("12.50")
            ]),
        }
    );
}

#[test]
fn update_of_the_key_carries_the_old_key() {
    let LogicalReplicationMessage::Update { old, new, .. } = decode("update_old_key") else {
        panic!("expected Update");
    };
    let null = TupleValue::Null;
    assert_eq!(
        old,
        Some(OldTuple::Key(TupleData(vec![
            text("1"),
            null.clone(),
            null.clone(),
            null.clone(),
            null
        ])))
    );
    assert_eq!(new.0[0], text("2"));
}

#[test]
fn update_with_replica_identity_full_carries_the_old_row() {
    assert_eq!(
        decode("update_old_full"),
        LogicalReplicationMessage::Update {
            xid: None,
            relation_id: AUDIT_OID,
            old: Some(OldTuple::Full(TupleData(vec![
                text("10"),
                TupleValue::Null
            ]))),
            new: TupleData(vec![text("10"), text("noted")]),
        }
    );
}

#[test]
fn delete_with_default_identity_carries_the_key() {
    let null = TupleValue::Null;
    assert_eq!(
        decode("delete_old_key"),
        LogicalReplicationMessage::Delete {
            xid: None,
            relation_id: ITEMS_OID,
            old: OldTuple::Key(TupleData(vec![
                text("2"),
                null.clone(),
                null.clone(),
                null.clone(),
                null
            ])),
        }
    );
}

#[test]
fn delete_with_replica_identity_full_carries_the_row() {
    assert_eq!(
        decode("delete_old_full"),
        LogicalReplicationMessage::Delete {
            xid: None,
            relation_id: AUDIT_OID,
            old: OldTuple::Full(TupleData(vec![text("10"), text("noted")])),
        }
    );
}

#[test]
fn truncate_of_two_tables_with_cascade_and_restart_identity() {
    assert_eq!(
        decode("truncate"),
        LogicalReplicationMessage::Truncate {
            xid: None,
            options: TRUNCATE_CASCADE | TRUNCATE_RESTART_IDENTITY,
            relation_ids: vec![SCRATCH_A_OID, SCRATCH_B_OID],
        }
    );
}

#[test]
fn transactional_message() {
    let LogicalReplicationMessage::Message {
        xid,
        transactional,
        prefix,
        content,
        ..
    } = decode("message_transactional")
    else {
        panic!("expected Message");
    };
    assert_eq!((xid, transactional), (None, true));
    assert_eq!(prefix, "pgseam");
    assert_eq!(&content[..], b"transactional payload");
}

#[test]
fn non_transactional_message() {
    let LogicalReplicationMessage::Message {
        transactional,
        prefix,
        content,
        ..
    } = decode("message_non_transactional")
    else {
        panic!("expected Message");
    };
    assert!(!transactional);
    assert_eq!(prefix, "pgseam");
    assert_eq!(&content[..], &[0x00, 0xff, 0x10]);
}

#[test]
fn stream_start_first_and_later_segment() {
    assert_eq!(
        decode("stream_start_first_segment"),
        LogicalReplicationMessage::StreamStart {
            xid: 757,
            first_segment: true
        }
    );
    assert_eq!(
        decode("stream_start_later_segment"),
        LogicalReplicationMessage::StreamStart {
            xid: 757,
            first_segment: false
        }
    );
}

#[test]
fn stream_stop() {
    assert_eq!(decode("stream_stop"), LogicalReplicationMessage::StreamStop);
}

#[test]
fn relation_and_insert_inside_a_streamed_segment_carry_the_xid() {
    assert_eq!(
        decode("stream_relation"),
        LogicalReplicationMessage::Relation {
            xid: Some(757),
            relation_id: BULK_OID,
            namespace: "public".into(),
            name: "bulk".into(),
            replica_identity: ReplicaIdentity::Default,
            columns: vec![column(true, "id", 23, -1), column(false, "payload", 25, -1)],
        }
    );
    assert_eq!(
        decode("stream_insert"),
        LogicalReplicationMessage::Insert {
            xid: Some(757),
            relation_id: BULK_OID,
            new: TupleData(vec![text("1"), text(&"p".repeat(200))]),
        }
    );
}

#[test]
fn stream_commit() {
    let LogicalReplicationMessage::StreamCommit {
        xid,
        flags,
        commit_lsn,
        end_lsn,
        ..
    } = decode("stream_commit")
    else {
        panic!("expected Stream Commit");
    };
    assert_eq!((xid, flags), (757, 0));
    assert!(commit_lsn < end_lsn);
}

#[test]
fn stream_abort_of_a_subtransaction_and_of_the_whole_transaction() {
    assert_eq!(
        decode("stream_abort_subtransaction"),
        LogicalReplicationMessage::StreamAbort {
            xid: 758,
            subxid: 759,
            abort_lsn: None,
            abort_ts_us: None
        }
    );
    assert_eq!(
        decode("stream_abort_toplevel"),
        LogicalReplicationMessage::StreamAbort {
            xid: 758,
            subxid: 758,
            abort_lsn: None,
            abort_ts_us: None
        }
    );
}

#[test]
fn two_phase_prepare_then_commit_prepared() {
    let LogicalReplicationMessage::BeginPrepare {
        prepare_lsn,
        end_lsn,
        xid,
        gid,
        ..
    } = decode("begin_prepare")
    else {
        panic!("expected Begin Prepare");
    };
    assert_eq!(gid, "gid-commit");
    let LogicalReplicationMessage::Prepare {
        flags,
        prepare_lsn: prepared_at,
        end_lsn: prepare_end,
        xid: prepared_xid,
        gid: prepared_gid,
        ..
    } = decode("prepare")
    else {
        panic!("expected Prepare");
    };
    assert_eq!(flags, 0);
    assert_eq!(
        (
            prepared_at,
            prepare_end,
            prepared_xid,
            prepared_gid.as_str()
        ),
        (prepare_lsn, end_lsn, xid, "gid-commit")
    );
    let LogicalReplicationMessage::CommitPrepared {
        xid: committed_xid,
        gid: committed_gid,
        commit_lsn,
        ..
    } = decode("commit_prepared")
    else {
        panic!("expected Commit Prepared");
    };
    assert_eq!((committed_xid, committed_gid.as_str()), (xid, "gid-commit"));
    assert!(commit_lsn > prepare_lsn);
}

#[test]
fn two_phase_rollback_prepared() {
    let LogicalReplicationMessage::RollbackPrepared {
        flags,
        prepare_end_lsn,
        rollback_end_lsn,
        prepare_ts_us,
        rollback_ts_us,
        gid,
        ..
    } = decode("rollback_prepared")
    else {
        panic!("expected Rollback Prepared");
    };
    assert_eq!(flags, 0);
    assert_eq!(gid, "gid-rollback");
    assert!(prepare_end_lsn < rollback_end_lsn);
    assert!(prepare_ts_us < rollback_ts_us);
}

#[test]
fn stream_prepare() {
    let LogicalReplicationMessage::StreamPrepare { flags, gid, .. } = decode("stream_prepare")
    else {
        panic!("expected Stream Prepare");
    };
    assert_eq!((flags, gid.as_str()), (0, "gid-big"));
}

#[test]
fn captured_keepalive_frame() {
    let fixture = load("frame_keepalive");
    assert_eq!(
        ReplicationFrame::decode(fixture.bytes),
        Ok(ReplicationFrame::PrimaryKeepalive {
            wal_end: lsn("0/19850A0"),
            server_time_us: 0x0003_03fd_48e6_5015,
            reply_requested: false
        })
    );
}

#[test]
fn captured_xlog_data_frame_carries_a_begin_message() {
    let fixture = load("frame_xlogdata");
    let ReplicationFrame::XLogData {
        wal_start,
        wal_end,
        data,
        ..
    } = ReplicationFrame::decode(fixture.bytes).expect("XLogData")
    else {
        panic!("expected XLogData");
    };
    assert_eq!((wal_start, wal_end), (lsn("0/1989D20"), lsn("0/1989D20")));
    assert_eq!(
        LogicalReplicationMessage::decode(data, &DecodeContext::new(1)),
        Ok(decode("begin"))
    );
}
