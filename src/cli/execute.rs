//! `rollbook execute`: records a committed roll's fills (or a correction of earlier ones) as
//! a signed `roll.executed` event, and says whether they lie within the approved bounds.

use std::path::PathBuf;

use chrono::Utc;
use clap::Args;

use super::display::say;
use super::ids::{parse_id, resolve};
use super::keys::KeyArgs;
use super::proposals::{check_decision_inputs, close, open, service_error};
use super::{CliError, CliResult, EXIT_CHECK_FAILED, EXIT_OK};
use crate::domain::fills_file::read_fills;
use crate::domain::proposal::Status;

#[derive(Debug, Args)]
pub struct ExecuteArgs {
    /// The committed roll's proposal id (whole, its short id or its first 8+ characters).
    pub id: String,
    /// The fills TOML: `[[fills]]` tables with `contracts`, `price_usd`, `at` (RFC 3339) and
    /// `broker_ref`; for a correction also `corrects = ["EVENT_ID", ...]`, the earlier
    /// executions it replaces.
    #[arg(long)]
    pub fills: PathBuf,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Print JSON for machines (keys documented in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn execute(db: &str, args: &ExecuteArgs) -> CliResult {
    let id_text = parse_id(&args.id)?;
    let text = super::evaluate::read_input_file(&args.fills, crate::sizing::FILE_BYTES_MAX)?;
    let what = args.fills.display().to_string();
    let request = read_fills(&text, &what)
        .map_err(|error| CliError::bad_input(format!("{what}: {error}")))?;
    let key = args.key.signer()?;
    let (ledger, mut verified) = open(db).await?;
    let id = resolve(&ledger, &id_text).await?;
    let state = match check_decision_inputs(&ledger, &mut verified, id).await {
        Ok(state) => state,
        Err(error) => {
            close(&ledger, &verified).await;
            return Err(error);
        }
    };
    let outcome = ledger.execute(id, &request, &key, Utc::now()).await;
    close(&ledger, &verified).await;
    let (executed, stored) = outcome.map_err(service_error)?;
    let approved = state.recorded.terms.contracts_requested.unwrap_or_default();
    let breach = !executed.breaches.is_empty();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "proposal_id": id.to_string(),
                "event_id": stored.event_id.to_string(),
                "seq": stored.seq,
                "status": executed.status,
                "filled_contracts": executed.filled_contracts,
                "approved_contracts": approved,
                "corrects": executed.corrects,
                "breaches": executed.breaches,
            })
        );
    } else {
        let status = Status::parse(&executed.status).unwrap_or(Status::Committed);
        say!(
            "recorded {} fill(s) on roll {id} at seq {} (event {}): {} of {approved} contracts filled, {}",
            executed.fills.len(),
            stored.seq,
            stored.event_id,
            executed.filled_contracts,
            super::views::execution_label(status, executed.filled_contracts)
        );
        for reason in &executed.breaches {
            say!("  execution breach: {reason}");
        }
    }
    Ok(if breach { EXIT_CHECK_FAILED } else { EXIT_OK })
}
