//! `rollbook governance`: propose the next signer set or policy, and show what is in force.
//! Motions are co-signed and vetoed with the same `sign` and `reject` as rolls.

use std::path::PathBuf;

use crate::domain::envelope::uuid_v7_at;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use super::display::{say, signer_lines, signers_json};
use super::keys::{load_signer_set, KeyArgs};
use super::proposals::{close, history, open, service_error, verified_governance};
use super::views::summary;
use super::{CliResult, EXIT_OK};
use crate::crypto::Signer;
use crate::domain::approval::ProposalDraft;
use crate::domain::events::LEDGER_STREAM;
use crate::domain::governance::Governance;
use crate::pin::Verified;
use crate::service::Ledger;

#[derive(Debug, Args)]
pub struct GovernanceArgs {
    #[command(subcommand)]
    pub command: GovernanceCommand,
}

#[derive(Debug, Subcommand)]
pub enum GovernanceCommand {
    /// Propose the complete next signer set (add, remove or rotate keys, change K).
    #[command(
        after_help = "Example:\n  rollbook governance propose-signers --signers next-signers.toml --key alice.key\n\nIt commits with K signatures of the set in force, K of the next set, and one from every new key (a new key with a `valid_after` signs only from then on). A set with fewer than K keys valid now is refused; one with fewer than K valid at some time within a proposal's lifetime is warned about."
    )]
    ProposeSigners {
        /// Signers file of the next set (same format as for `init`).
        #[arg(long)]
        signers: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
        /// Print JSON for machines instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Propose the complete next policy (a policy file overriding the defaults).
    #[command(
        after_help = "Example:\n  rollbook governance propose-policy --policy policy.toml --key alice.key"
    )]
    ProposePolicy {
        /// Policy file of the next policy (TOML; keys it omits take the defaults).
        #[arg(long)]
        policy: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
        /// Print JSON for machines instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show the signer set and policy in force.
    #[command(after_help = "Example:\n  rollbook governance show --json")]
    Show {
        /// Print JSON for machines instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(db: &str, args: &GovernanceArgs) -> CliResult {
    match &args.command {
        GovernanceCommand::ProposeSigners { signers, key, json } => {
            let key = key.signer()?;
            let (ledger, verified) = open(db).await?;
            verified.stream(&ledger.store, LEDGER_STREAM).await?;
            let current = ledger.governance().await.map_err(service_error)?;
            let next = load_signer_set(signers, current.set.version + 1)?;
            let mut warnings = next.threshold_warnings(current.policy.approval.proposer_counts);
            // This machine's clock: a warning, not a decision (the service refuses a set that
            // could decide nothing on the ledger's clock).
            let now = Utc::now();
            let lifetime_end = now
                + chrono::Duration::seconds(current.policy.approval.proposal_ttl_seconds as i64);
            warnings.extend(next.lifetime_warning(now, lifetime_end));
            for warning in warnings {
                eprintln!("warning: {warning}");
            }
            record_motion(
                (ledger, verified),
                |g, now| ProposalDraft::signer_set(g, uuid_v7_at(now), &next, now),
                &key,
                *json,
            )
            .await
        }
        GovernanceCommand::ProposePolicy { policy, key, json } => {
            let policy = super::evaluate::load_policy(Some(policy))?;
            if let Some(warning) = super::proposals::ttl_warning(&policy) {
                eprintln!("warning: {warning}");
            }
            let key = key.signer()?;
            let (ledger, verified) = open(db).await?;
            verified.stream(&ledger.store, LEDGER_STREAM).await?;
            record_motion(
                (ledger, verified),
                |g, now| ProposalDraft::policy(g, uuid_v7_at(now), &policy, now),
                &key,
                *json,
            )
            .await
        }
        GovernanceCommand::Show { json } => {
            let (ledger, verified) = open(db).await?;
            let (governance, history) = verified_governance(&ledger, &verified).await?;
            let genesis_hash = history.genesis_hash;
            close(&ledger, &verified).await;
            let signers = signers_json(&governance.set);
            // What a request file names (`signer_set_hash`), to compare with it.
            let set_hash = crate::crypto::to_hex(&crate::crypto::canonical::signer_set_hash(
                &governance.set_json,
            ));
            if *json {
                let policy: serde_json::Value =
                    serde_json::from_str(&governance.policy_json).expect("canonical policy JSON");
                println!(
                    "{}",
                    serde_json::json!({
                        "ledger_id": ledger.ledger_id.to_string(),
                        "genesis_hash": genesis_hash,
                        "signer_set_version": governance.set.version,
                        "signer_set_hash": set_hash,
                        "threshold": governance.set.threshold,
                        "signers": signers,
                        "policy_version": governance.policy_version,
                        "policy_hash": governance.policy_hash,
                        "policy": policy,
                    })
                );
            } else {
                println!("ledger {}", ledger.ledger_id);
                println!("genesis hash {genesis_hash}");
                println!(
                    "signer set v{}: {} of {} (hash {set_hash})",
                    governance.set.version,
                    governance.set.threshold,
                    governance.set.signers.len()
                );
                for line in signer_lines(&governance.set) {
                    say!("  {line}");
                }
                println!(
                    "policy v{} {}",
                    governance.policy_version, governance.policy_hash
                );
                print!("{}", governance.policy.to_toml_string());
            }
            Ok(EXIT_OK)
        }
    }
}

/// Records the motion `draft` makes from the governance in force, signed by its proposer's
/// key, and tells what was recorded.
async fn record_motion(
    (ledger, verified): (Ledger, Verified),
    draft: impl Fn(&Governance, DateTime<Utc>) -> ProposalDraft,
    key: &Signer,
    json: bool,
) -> CliResult {
    let state = ledger
        .propose_motion(|g, now| Ok(draft(g, now)), key, Utc::now())
        .await
        .map_err(service_error)?;
    let history = history(&ledger, &verified).await?;
    close(&ledger, &verified).await;
    report(&history, &state, json)
}

fn report(
    history: &super::views::History,
    state: &crate::domain::approval::ProposalState,
    json: bool,
) -> CliResult {
    if json {
        let mut object = serde_json::json!({"proposal_id": state.id.to_string(), "kind": state.recorded.terms.kind.as_str(), "status": state.status.as_str(), "expires_at": state.recorded.terms.expires_at});
        if let Some(Ok(view)) = history.motion(state) {
            super::display::motion_json(&view, &mut object);
        }
        println!("{object}");
    } else {
        println!("recorded motion {} [{}]", state.id, state.status);
        say!("  {}", summary(state));
        for line in history.motion_lines(state) {
            say!("    {line}");
        }
        println!(
            "  co-sign with `rollbook sign {} --key KEY`; expires {}",
            state.id, state.recorded.terms.expires_at
        );
    }
    Ok(EXIT_OK)
}
