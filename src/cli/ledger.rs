//! `rebuild`.

use clap::Args;

use super::{open_ledger, CliResult, EXIT_OK};

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
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
