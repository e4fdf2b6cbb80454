//! Signed checkpoints kept beside the chain (migrations 0005): the store's API and the
//! database's protections, the same test bodies on SQLite and PostgreSQL.

mod common;

use chrono::Utc;
use common::TestDb;
use rollbook::domain::envelope::NewEvent;
use rollbook::store::{ExpectedVersion, NewCheckpoint, Store};
use uuid::Uuid;

fn note_event(stream: &str, n: u64) -> NewEvent {
    NewEvent {
        stream_id: stream.to_string(),
        event_type: "test.note".into(),
        schema_version: 1,
        actor: Some("SHA256:tester".into()),
        payload: serde_json::to_vec(&serde_json::json!({ "n": n })).unwrap(),
    }
}

/// A ledger of `events` test events.
async fn ledger_of(store: &Store, events: u64) -> Uuid {
    let ledger = Uuid::now_v7();
    store
        .append(
            ledger,
            true,
            &[("ledger".into(), ExpectedVersion::NoStream)],
            vec![note_event("ledger", 0)],
            Utc::now(),
        )
        .await
        .expect("create ledger");
    for n in 1..events {
        store
            .append(ledger, false, &[], vec![note_event("s", n)], Utc::now())
            .await
            .expect("append");
    }
    ledger
}

const NOTE_2: &str = "rollbook.x\n2\nAAAA\n\n\u{2014} rollbook.x abcd\n";

both_backends!(
    checkpoints_are_stored_read_back_and_never_replaced,
    signature_lines_are_added_once_and_remember_their_witness,
    a_checkpoint_beyond_the_head_is_refused,
    checkpoint_tables_refuse_update_delete_and_truncate,
    an_insert_cannot_replace_a_stored_checkpoint,
);

async fn checkpoints_are_stored_read_back_and_never_replaced(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = ledger_of(&store, 3).await;
    assert_eq!(store.checkpoint(ledger, None).await.unwrap(), None);
    let first = NewCheckpoint {
        tree_size: 2,
        root: [2; 32],
        note: NOTE_2,
    };
    assert!(store
        .add_checkpoint(ledger, &first, Utc::now())
        .await
        .unwrap());
    let other = NewCheckpoint {
        tree_size: 2,
        root: [9; 32],
        note: "another note\n",
    };
    assert!(
        !store
            .add_checkpoint(ledger, &other, Utc::now())
            .await
            .unwrap(),
        "a second checkpoint of one size is not stored"
    );
    let third = NewCheckpoint {
        tree_size: 3,
        root: [3; 32],
        note: "rollbook.x\n3\nBBBB\n\n",
    };
    assert!(store
        .add_checkpoint(ledger, &third, Utc::now())
        .await
        .unwrap());
    let stored = store.checkpoints(ledger, 1, u64::MAX).await.unwrap();
    assert_eq!(
        stored
            .iter()
            .map(|c| (c.tree_size, c.root, c.note.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (2, [2; 32], NOTE_2),
            (3, [3; 32], "rollbook.x\n3\nBBBB\n\n")
        ]
    );
    assert_eq!(
        store
            .checkpoint(ledger, None)
            .await
            .unwrap()
            .unwrap()
            .tree_size,
        3
    );
    assert_eq!(
        store
            .checkpoint(ledger, Some(2))
            .await
            .unwrap()
            .unwrap()
            .root,
        [2; 32]
    );
    assert_eq!(store.checkpoint(ledger, Some(1)).await.unwrap(), None);
    assert_eq!(store.checkpoints(ledger, 1, 2).await.unwrap().len(), 1);
}

async fn signature_lines_are_added_once_and_remember_their_witness(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = ledger_of(&store, 4).await;
    for size in [2, 4] {
        let checkpoint = NewCheckpoint {
            tree_size: size,
            root: [size as u8; 32],
            note: NOTE_2,
        };
        assert!(store
            .add_checkpoint(ledger, &checkpoint, Utc::now())
            .await
            .unwrap());
    }
    let url = "http://127.0.0.1:9/w";
    assert_eq!(store.witness_size(ledger, url).await.unwrap(), 0);
    let now = Utc::now();
    assert!(store
        .add_checkpoint_signature(ledger, 2, "\u{2014} w1 AAAA", Some(url), now)
        .await
        .unwrap());
    assert!(
        !store
            .add_checkpoint_signature(ledger, 2, "\u{2014} w1 AAAA", Some(url), now)
            .await
            .unwrap(),
        "the same line again adds nothing"
    );
    assert!(store
        .add_checkpoint_signature(ledger, 4, "\u{2014} w1 BBBB", Some(url), now)
        .await
        .unwrap());
    assert!(store
        .add_checkpoint_signature(ledger, 4, "\u{2014} bob CCCC", None, now)
        .await
        .unwrap());
    assert_eq!(store.witness_size(ledger, url).await.unwrap(), 4);
    assert_eq!(
        store
            .witness_size(ledger, "http://elsewhere")
            .await
            .unwrap(),
        0
    );
    let stored = store.checkpoints(ledger, 1, 10).await.unwrap();
    let lines: Vec<Vec<(&str, Option<&str>)>> = stored
        .iter()
        .map(|c| {
            c.added
                .iter()
                .map(|a| (a.line.as_str(), a.source.as_deref()))
                .collect()
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            vec![("\u{2014} w1 AAAA", Some(url))],
            vec![("\u{2014} bob CCCC", None), ("\u{2014} w1 BBBB", Some(url))],
        ]
    );
    // A signature for a size with no checkpoint is refused by the foreign key.
    assert!(store
        .add_checkpoint_signature(ledger, 3, "\u{2014} w1 DDDD", Some(url), now)
        .await
        .is_err());
}

async fn a_checkpoint_beyond_the_head_is_refused(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = ledger_of(&store, 2).await;
    let beyond = NewCheckpoint {
        tree_size: 3,
        root: [3; 32],
        note: NOTE_2,
    };
    let error = store
        .add_checkpoint(ledger, &beyond, Utc::now())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("at most its head"), "{error}");
    let unknown = store
        .add_checkpoint(Uuid::now_v7(), &beyond, Utc::now())
        .await;
    assert!(unknown.is_err());
    assert!(store.checkpoints(ledger, 1, 10).await.unwrap().is_empty());
}

async fn stored_rows(db: &TestDb) -> Vec<Vec<String>> {
    let mut rows = db
        .raw_rows("SELECT tree_size, note FROM checkpoints ORDER BY tree_size")
        .await;
    rows.extend(
        db.raw_rows("SELECT tree_size, line FROM checkpoint_signatures ORDER BY tree_size")
            .await,
    );
    rows
}

async fn checkpoint_tables_refuse_update_delete_and_truncate(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = ledger_of(&store, 2).await;
    let checkpoint = NewCheckpoint {
        tree_size: 2,
        root: [2; 32],
        note: NOTE_2,
    };
    store
        .add_checkpoint(ledger, &checkpoint, Utc::now())
        .await
        .unwrap();
    store
        .add_checkpoint_signature(ledger, 2, "\u{2014} w1 AAAA", Some("u"), Utc::now())
        .await
        .unwrap();
    let before = stored_rows(db).await;
    let mut attempts = vec![
        "UPDATE checkpoints SET note = 'forged'",
        "UPDATE checkpoints SET tree_size = 1",
        "DELETE FROM checkpoints",
        "UPDATE checkpoint_signatures SET line = 'forged'",
        "DELETE FROM checkpoint_signatures",
    ];
    if db.backend == "postgres" {
        attempts.extend([
            "TRUNCATE checkpoint_signatures",
            "TRUNCATE checkpoints CASCADE",
            "INSERT INTO checkpoints (ledger_id, tree_size, root, note, recorded_at) \
             SELECT ledger_id, tree_size, root, 'forged', recorded_at FROM checkpoints \
             ON CONFLICT (ledger_id, tree_size) DO UPDATE SET note = EXCLUDED.note",
        ]);
    }
    for sql in attempts {
        let refused = db.raw_execute(sql).await;
        assert!(refused.is_err(), "{sql} must be refused");
        assert!(
            refused.unwrap_err().to_string().contains("append-only"),
            "{sql}: refused by the trigger"
        );
    }
    assert_eq!(stored_rows(db).await, before);
}

async fn an_insert_cannot_replace_a_stored_checkpoint(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let ledger = ledger_of(&store, 2).await;
    let checkpoint = NewCheckpoint {
        tree_size: 2,
        root: [2; 32],
        note: NOTE_2,
    };
    store
        .add_checkpoint(ledger, &checkpoint, Utc::now())
        .await
        .unwrap();
    store
        .add_checkpoint_signature(ledger, 2, "\u{2014} w1 AAAA", Some("u"), Utc::now())
        .await
        .unwrap();
    let before = stored_rows(db).await;
    if db.backend == "sqlite" {
        // REPLACE deletes the colliding row without firing DELETE triggers: it must not get
        // that far.
        for sql in [
            "INSERT OR REPLACE INTO checkpoints (ledger_id, tree_size, root, note, recorded_at) \
             SELECT ledger_id, tree_size, root, 'forged', recorded_at FROM checkpoints",
            "REPLACE INTO checkpoint_signatures (ledger_id, tree_size, line, source, recorded_at) \
             SELECT ledger_id, tree_size, line, 'elsewhere', recorded_at FROM checkpoint_signatures",
        ] {
            db.raw_execute(sql).await.ok();
        }
    } else {
        db.raw_execute(
            "INSERT INTO checkpoint_signatures (ledger_id, tree_size, line, source, recorded_at) \
             SELECT ledger_id, tree_size, line, 'elsewhere', recorded_at FROM checkpoint_signatures \
             ON CONFLICT (ledger_id, tree_size, line) DO UPDATE SET source = EXCLUDED.source",
        )
        .await
        .expect_err("an upsert's update is an update");
    }
    assert_eq!(stored_rows(db).await, before);
    let sources = db
        .raw_rows("SELECT source FROM checkpoint_signatures")
        .await;
    assert_eq!(sources, vec![vec!["u".to_string()]]);
}
