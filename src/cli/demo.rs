//! `rollbook demo`. Until the approval commands land, the demo exercises the ledger core:
//! it creates a ledger, appends events in separate transactions, and verifies the chain.

use clap::Args;
use uuid::Uuid;

use super::{CliError, CliResult, EXIT_OK};
use crate::audit::verify_live_chain;
use crate::domain::envelope::NewEvent;
use crate::store::{ExpectedVersion, Store};

#[derive(Debug, Args)]
pub struct DemoArgs {}

fn note(stream: &str, event_type: &str, text: &str) -> NewEvent {
    NewEvent {
        stream_id: stream.to_string(),
        event_type: event_type.to_string(),
        schema_version: 1,
        actor: None,
        payload: serde_json::to_vec(&serde_json::json!({ "note": text })).expect("plain JSON"),
    }
}

pub async fn run(db: &str, _args: &DemoArgs) -> CliResult {
    let store = Store::open(db).await?;
    if !store.ledger_ids().await?.is_empty() {
        return Err(CliError::refused(format!(
            "{} already holds a ledger; the demo needs a fresh database (try --db sqlite://$(mktemp -d)/demo.db)",
            crate::store::redact_url(db)
        )));
    }
    let ledger_id = Uuid::now_v7();
    println!(
        "rollbook demo on {} ({})",
        crate::store::redact_url(db),
        store.backend_name()
    );
    println!(
        "note: the approval flow is not built yet; this demo exercises the ledger core only.\n"
    );
    let genesis = store
        .append(
            ledger_id,
            true,
            &[("ledger".to_string(), ExpectedVersion::NoStream)],
            vec![note("ledger", "demo.started", "demo ledger")],
            chrono::Utc::now(),
        )
        .await?;
    println!("created ledger {ledger_id} (seq {})", genesis[0].seq);
    let stream = Uuid::now_v7().to_string();
    let steps = [
        "proposed",
        "co-signed by alice",
        "co-signed by carol",
        "committed",
    ];
    for (index, step) in steps.iter().enumerate() {
        let expected = if index == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(index as u64)
        };
        let written = store
            .append(
                ledger_id,
                false,
                &[(stream.clone(), expected)],
                vec![note(&stream, "demo.step", step)],
                chrono::Utc::now(),
            )
            .await?;
        println!(
            "seq {:>2}  stream {}  v{}  {}",
            written[0].seq,
            &stream[..8],
            written[0].stream_version,
            step
        );
    }
    let stale = store
        .append(
            ledger_id,
            false,
            &[(stream.clone(), ExpectedVersion::Exact(1))],
            vec![note(&stream, "demo.step", "late")],
            chrono::Utc::now(),
        )
        .await;
    match stale {
        Err(error) => println!("\na stale writer is refused: {error}"),
        Ok(_) => {
            return Err(CliError::new(
                super::EXIT_CHECK_FAILED,
                "a stale append was accepted",
            ))
        }
    }
    let summary = verify_live_chain(&store, ledger_id)
        .await
        .map_err(|error| {
            CliError::new(
                super::EXIT_CHECK_FAILED,
                format!("verification failed: {error}"),
            )
        })?;
    println!(
        "\nverify: {} events, chain valid, head {}",
        summary.events, summary.head_hash
    );
    store.close().await;
    Ok(EXIT_OK)
}
