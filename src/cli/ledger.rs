//! `verify` (live) and `rebuild`.

use clap::Args;

use super::{open_ledger, CliError, CliResult, EXIT_CHECK_FAILED, EXIT_OK};
use crate::audit::{verify_live_chain, LiveVerifyError};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// An exported audit file to verify offline (not built yet: see issue "Audit trail").
    pub file: Option<std::path::PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn verify(db: &str, args: &VerifyArgs) -> CliResult {
    if let Some(file) = &args.file {
        return Err(CliError::bad_input(format!(
            "offline verification of {} is not built yet; `rollbook verify` without a file checks the live ledger",
            file.display()
        )));
    }
    let (store, ledger_id) = open_ledger(db).await?;
    let outcome = verify_live_chain(&store, ledger_id).await;
    store.close().await;
    match outcome {
        Ok(summary) => {
            if args.json {
                let out = serde_json::json!({
                    "valid": true,
                    "ledger_id": summary.ledger_id.to_string(),
                    "events": summary.events,
                    "head_hash": summary.head_hash,
                });
                println!("{out}");
            } else {
                println!("ledger {}: valid", summary.ledger_id);
                println!("  events     {}", summary.events);
                println!("  head hash  {}", summary.head_hash);
            }
            Ok(EXIT_OK)
        }
        Err(LiveVerifyError::Store(error)) => Err(error.into()),
        Err(failure) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"valid": false, "ledger_id": ledger_id.to_string(), "error": failure.to_string()})
                );
            } else {
                println!("ledger {ledger_id}: INVALID");
            }
            Err(CliError::new(
                EXIT_CHECK_FAILED,
                format!("verification failed: {failure}"),
            ))
        }
    }
}

pub async fn rebuild(db: &str, args: &RebuildArgs) -> CliResult {
    let (store, ledger_id) = open_ledger(db).await?;
    let replayed = store.rebuild_projections(ledger_id).await;
    store.close().await;
    let replayed = replayed?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({"ledger_id": ledger_id.to_string(), "events_replayed": replayed})
        );
    } else {
        println!("rebuilt the projections of ledger {ledger_id} from {replayed} events");
    }
    Ok(EXIT_OK)
}
