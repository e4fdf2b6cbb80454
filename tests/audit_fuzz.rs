//! Arbitrary bytes and arbitrary JSON fed to the export reader and the proof reader: never a
//! panic, always an error or a result.

use std::io::Cursor;

use proptest::prelude::*;
use rollbook::audit::export::Line;
use rollbook::audit::proofs::{check_inclusion, InclusionProof};
use rollbook::audit::verify_export;

const HEADER: &str = "{\"type\":\"header\",\"format\":\"rollbook-export\",\"version\":1,\"ledger_id\":\"01a20c95-fcf0-703c-b080-9bafd695b4d9\",\"genesis_hash\":\"00\",\"from_seq\":1,\"exported_at\":\"x\",\"rollbook_version\":\"0\"}";

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<u64>().prop_map(|n| serde_json::json!(n)),
        "[a-z0-9:.\\-]{0,70}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_string()),
                    Just("seq".to_string()),
                    Just("payload".to_string()),
                    Just("events".to_string()),
                    "[a-z_]{1,12}"
                ],
                inner,
                0..8
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_export_reader_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = verify_export(Cursor::new(bytes.clone()), |_| {});
        let mut with_header = format!("{HEADER}\n").into_bytes();
        with_header.extend(bytes);
        let _ = verify_export(Cursor::new(with_header), |_| {});
    }

    #[test]
    fn the_export_reader_never_panics_on_json(values in prop::collection::vec(json_value(), 0..6), kind in 0usize..4) {
        let mut text = format!("{HEADER}\n");
        for value in &values {
            let mut value = value.clone();
            if let serde_json::Value::Object(map) = &mut value {
                map.insert("type".into(), serde_json::Value::String(["event", "checkpoint", "header", "x"][kind].into()));
            }
            text.push_str(&serde_json::to_string(&value).unwrap());
            text.push('\n');
        }
        let _ = verify_export(Cursor::new(text.into_bytes()), |_| {});
        for value in &values {
            let _ = Line::parse(&serde_json::to_string(value).unwrap());
        }
    }

    #[test]
    fn the_proof_reader_never_panics(value in json_value(), size in any::<u64>(), index in any::<u64>(), path_len in 0usize..70) {
        if let Ok(proof) = serde_json::from_value::<InclusionProof>(value) {
            let _ = check_inclusion(&proof, None);
        }
        let proof = serde_json::json!({
            "format": "rollbook-inclusion-proof/v1",
            "ledger_id": "01a20c95-fcf0-703c-b080-9bafd695b4d9",
            "proposal_id": "p",
            "tree_size": size,
            "merkle_root": "00".repeat(32),
            "events": [{"leaf_index": index, "audit_path": vec!["11".repeat(32); path_len], "event": {
                "type": "event", "seq": index.wrapping_add(1), "ledger_id": "01a20c95-fcf0-703c-b080-9bafd695b4d9",
                "stream_id": "p", "stream_version": 1, "event_id": "01a20c95-fcf0-703c-b080-9bafd695b4d9",
                "event_type": "proposal.signed", "schema_version": 1, "recorded_at": "2026-05-07T14:30:00.000000Z",
                "actor": null, "payload": "{}", "prev_hash": "00".repeat(32), "hash": "00".repeat(32)}}]
        });
        let proof: InclusionProof = serde_json::from_value(proof).unwrap();
        prop_assert!(check_inclusion(&proof, None).is_err());
    }
}

/// A failure in the first lines of a long export ends the whole pipeline (reader, workers,
/// auditor) at once, with the first failure, whatever is still being read or prepared.
#[test]
fn an_early_failure_in_a_long_export_ends_the_walk() {
    let mut text = format!("{HEADER}\n");
    for _ in 2..20_000 {
        text.push_str("{\"type\":\"event\",\"seq\":1}\n");
    }
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let outcome = verify_export(Cursor::new(text.into_bytes()), |_| {});
        let _ = done_tx.send(outcome.err().map(|error| error.to_string()));
    });
    let error = done_rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the verification ended")
        .expect("a broken export is refused");
    assert!(error.contains("line 2:"), "{error}");
}
