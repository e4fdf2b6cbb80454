//! `rebuild`.

use clap::Args;

use super::{open_verified, CliResult, EXIT_OK};

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn rebuild(db: &str, args: &RebuildArgs) -> CliResult {
    // The events are verified first: a projection is rebuilt only from events this client
    // verified (a forged event is refused here as everywhere).
    let (store, ledger_id, verified) = open_verified(db).await?;
    let replayed = store.rebuild_projections(ledger_id).await;
    store.close().await;
    verified.close().await;
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
