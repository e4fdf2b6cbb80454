//! The commands people type every day: init, propose, sign, reject, withdraw, inbox, show, list,
//! and offline signing (request / sign --offline / attach).

use std::path::PathBuf;

use chrono::Utc;
use clap::Args;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::keys::{load_secret, load_signer_set};
use super::views::{name_of, proposal_json, proposal_text, summary};
use super::{CliError, CliResult, EXIT_CHECK_FAILED, EXIT_OK};
use crate::crypto::canonical::signed_message;
use crate::crypto::to_hex;
use crate::domain::approval::{cosign_purpose, subject_digest_of, ProposalState, Status};
use crate::domain::events::LEDGER_STREAM;
use crate::domain::events::{ProposalKind, ProposalTerms, SignatureEnvelope};
use crate::domain::governance::seal_signature;
use crate::pin::Verified;
use crate::service::{self, Ledger, ServiceError};
use crate::store::Store;

pub(crate) fn service_error(error: ServiceError) -> CliError {
    match error {
        ServiceError::Refused(refusal) => CliError::refused(refusal.to_string()),
        ServiceError::Store(store) => store.into(),
        ServiceError::BadInput(message) | ServiceError::NotFound(message) => {
            CliError::bad_input(message)
        }
        ServiceError::Corrupt(_) => CliError::new(EXIT_CHECK_FAILED, error.to_string()),
    }
}

/// The ledger of `db`, verified from this client's pin to its head, and the verified state
/// to read it through (`pin::Verified`).
pub(crate) async fn open(db: &str) -> Result<(Ledger, Verified), CliError> {
    let (store, ledger_id, verified) = super::open_verified(db).await?;
    Ok((Ledger { store, ledger_id }, verified))
}

/// Closes the ledger's store and the state file.
pub(crate) async fn close(ledger: &Ledger, verified: &Verified) {
    ledger.store.close().await;
    verified.close().await;
}

/// A proposal as verified (`pin::Verified::proposal`); unknown ids are bad input, as before.
pub(crate) async fn verified_proposal(
    ledger: &Ledger,
    verified: &mut Verified,
    id: Uuid,
) -> Result<ProposalState, CliError> {
    verified.proposal(&ledger.store, id).await?.ok_or_else(|| {
        CliError::bad_input(format!(
            "no proposal {id} in ledger {}; `rollbook list` shows them",
            ledger.ledger_id
        ))
    })
}

/// Before a decision: the governance stream and the proposal it acts on are the verified
/// ones (a row deleted or edited before the pin would otherwise decide it).
async fn check_decision_inputs(
    ledger: &Ledger,
    verified: &mut Verified,
    id: Uuid,
) -> Result<ProposalState, CliError> {
    verified.stream(&ledger.store, LEDGER_STREAM).await?;
    let state = verified_proposal(ledger, verified, id).await?;
    // A motion's commit expires the pending proposals the database lists: they must be the
    // verified ones.
    if state.recorded.terms.kind != ProposalKind::Roll {
        verified
            .proposals(&ledger.store, Some(Status::Pending.as_str()))
            .await?;
    }
    Ok(state)
}

fn parse_id(text: &str) -> Result<Uuid, CliError> {
    Uuid::parse_str(text).map_err(|_| {
        CliError::bad_input(format!(
            "{text:?} is not a proposal id (a UUID, as `rollbook list` shows)"
        ))
    })
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Signers file (TOML): `threshold = K` and `[[signers]]` with name, role, public_key_file.
    #[arg(long)]
    pub signers: PathBuf,
    /// Policy file overriding any subset of the default policy.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// The creator's private key; the creator must be one of the signers.
    #[arg(long)]
    pub key: PathBuf,
    /// Print JSON for machines (keys documented in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn init(db: &str, args: &InitArgs) -> CliResult {
    let set = load_signer_set(&args.signers, 1)?;
    let policy = super::evaluate::load_policy(args.policy.as_deref())?;
    let key = load_secret(&args.key)?;
    let store = Store::open(db).await?;
    let (ledger_id, governance) = service::init(&store, &set, &policy, &key, Utc::now())
        .await
        .map_err(service_error)?;
    store.close().await;
    let mut warnings = set.threshold_warnings(policy.approval.proposer_counts);
    warnings.extend(ttl_warning(&policy));
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "ledger_id": ledger_id.to_string(),
                "threshold": set.threshold,
                "signers": set.names(),
                "policy_hash": governance.policy_hash,
                "warnings": warnings,
            })
        );
    } else {
        println!("created ledger {ledger_id}");
        println!(
            "  signers   {} of {}: {}",
            set.threshold,
            set.signers.len(),
            set.names().join(", ")
        );
        println!("  policy    v1 {}", governance.policy_hash);
    }
    Ok(EXIT_OK)
}

#[derive(Debug, Args)]
pub struct ProposeArgs {
    /// The roll proposal (TOML; fields as in docs/methodology.md).
    pub file: PathBuf,
    /// The proposer's private key (must be in the signer set).
    #[arg(long)]
    pub key: PathBuf,
    /// Print JSON for machines (keys documented in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn propose(db: &str, args: &ProposeArgs) -> CliResult {
    let body = super::evaluate::read_input_file(&args.file, crate::sizing::FILE_BYTES_MAX)?;
    let key = load_secret(&args.key)?;
    let (ledger, verified) = open(db).await?;
    verified.stream(&ledger.store, LEDGER_STREAM).await?;
    let (state, report) = ledger
        .propose_roll(body, &key, Utc::now())
        .await
        .map_err(|error| match error {
            ServiceError::BadInput(message) => {
                CliError::bad_input(format!("{}: {message}", args.file.display()))
            }
            other => service_error(other),
        })?;
    close(&ledger, &verified).await;
    let status = state.status;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "proposal_id": state.id.to_string(),
                "verdict": report.verdict.as_str(),
                "status": status.as_str(),
                "contracts_requested": report.contracts_requested,
                "contracts_max": report.contracts_max,
                "resize_to": report.resize_to,
                "failed_checks": report.failed_check_ids(),
                "expires_at": state.recorded.terms.expires_at,
            })
        );
    } else {
        println!("recorded proposal {} [{}]", state.id, status);
        println!("  {}", summary(&state));
        if status == Status::Failed {
            println!(
                "  verdict fail ({}); it can never be signed. The largest size that passes the caps: {} contracts",
                report.failed_check_ids().join(", "),
                report.contracts_max
            );
        } else {
            println!(
                "  verdict pass; expires {}",
                state.recorded.terms.expires_at
            );
        }
    }
    Ok(if status == Status::Failed {
        EXIT_CHECK_FAILED
    } else {
        EXIT_OK
    })
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The proposal id.
    pub id: String,
    /// The signer's private key.
    #[arg(long)]
    pub key: PathBuf,
    /// Sign a request file on a machine without the database (see `rollbook request`).
    #[arg(long, requires = "request")]
    pub offline: bool,
    /// The request file to sign with --offline.
    #[arg(long)]
    pub request: Option<PathBuf>,
    /// Where --offline writes the signature file (default: ID.sig.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print JSON for machines (keys documented in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

fn print_outcome(
    ledger: &Ledger,
    sets: &[crate::domain::governance::ActiveSet],
    outcome: &crate::domain::approval::SignOutcome,
    id: Uuid,
    json: bool,
) {
    let counted: Vec<String> = outcome
        .tally
        .counted
        .iter()
        .map(|k| name_of(sets, k))
        .collect();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "proposal_id": id.to_string(),
                "status": if outcome.committed { "committed" } else { "pending" },
                "counted": counted,
                "threshold": outcome.tally.threshold,
                "missing": outcome.tally.missing,
                "ledger_id": ledger.ledger_id.to_string(),
            })
        );
    } else if outcome.committed {
        println!(
            "committed: {} of {} ({})",
            counted.len(),
            outcome.tally.threshold,
            counted.join(", ")
        );
    } else {
        let mut line = format!(
            "signed: {} of {} counted ({})",
            counted.len(),
            outcome.tally.threshold,
            counted.join(", ")
        );
        if let Some(requirement) = &outcome.tally.pending_requirement {
            line.push_str(&format!("; {requirement}"));
        }
        if !outcome.tally.missing.is_empty() {
            line.push_str(&format!(
                "; may still sign: {}",
                outcome.tally.missing.join(", ")
            ));
        }
        println!("{line}");
    }
}

fn show_what_is_signed(state: &ProposalState) {
    eprintln!(
        "signing proposal {} ({})",
        state.id,
        state.recorded.terms.kind.as_str()
    );
    eprintln!("  {}", summary(state));
    if let Some(verdict) = &state.recorded.terms.verdict {
        eprintln!("  verdict {verdict}");
    }
    eprintln!("  subject digest {}", state.recorded.subject_digest);
}

pub async fn sign(db: &str, args: &SignArgs) -> CliResult {
    let id = parse_id(&args.id)?;
    let key = load_secret(&args.key)?;
    if args.offline {
        return sign_offline(id, &key, args);
    }
    let (ledger, mut verified) = open(db).await?;
    let state = check_decision_inputs(&ledger, &mut verified, id).await?;
    show_what_is_signed(&state);
    let outcome = ledger
        .sign(id, &key, Utc::now())
        .await
        .map_err(service_error)?;
    let sets = ledger.signer_sets().await.map_err(service_error)?;
    print_outcome(&ledger, &sets, &outcome, id, args.json);
    close(&ledger, &verified).await;
    Ok(EXIT_OK)
}

#[derive(Debug, Args)]
pub struct RejectArgs {
    /// The proposal id.
    pub id: String,
    #[arg(long)]
    pub key: PathBuf,
    /// Why: recorded and signed with the veto.
    #[arg(long)]
    pub reason: String,
    /// Print JSON for machines (keys documented in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn reject(db: &str, args: &RejectArgs) -> CliResult {
    let (id, key, ledger, verified) = id_key_and_ledger(db, &args.id, &args.key).await?;
    ledger
        .reject(id, &key, &args.reason, Utc::now())
        .await
        .map_err(service_error)?;
    closed(
        (ledger, verified),
        id,
        Status::Rejected,
        format!("rejected proposal {id}: {}", args.reason),
        args.json,
    )
    .await
}

/// What a veto or a withdrawal acts with: the proposal id, the signer's key, the open ledger
/// verified from the pin (checked in that order, so a typo fails before the database is
/// opened), the proposal and the governance checked against the verified events.
async fn id_key_and_ledger(
    db: &str,
    id: &str,
    key: &std::path::Path,
) -> Result<(Uuid, crate::crypto::keys::SecretKey, Ledger, Verified), CliError> {
    let id = parse_id(id)?;
    let key = load_secret(key)?;
    let (ledger, mut verified) = open(db).await?;
    check_decision_inputs(&ledger, &mut verified, id).await?;
    Ok((id, key, ledger, verified))
}

/// After a veto or a withdrawal: closes the store and tells the proposal's new status, as one
/// JSON object or as `text`.
async fn closed(
    (ledger, verified): (Ledger, Verified),
    id: Uuid,
    status: Status,
    text: String,
    json: bool,
) -> CliResult {
    close(&ledger, &verified).await;
    if json {
        println!(
            "{}",
            serde_json::json!({"proposal_id": id.to_string(), "status": status.as_str()})
        );
    } else {
        println!("{text}");
    }
    Ok(EXIT_OK)
}

#[derive(Debug, Args)]
pub struct WithdrawArgs {
    /// The proposal id.
    pub id: String,
    /// The proposer's key.
    #[arg(long)]
    pub key: PathBuf,
    /// Print JSON for machines (keys documented in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn withdraw(db: &str, args: &WithdrawArgs) -> CliResult {
    let (id, key, ledger, verified) = id_key_and_ledger(db, &args.id, &args.key).await?;
    ledger
        .withdraw(id, &key, Utc::now())
        .await
        .map_err(service_error)?;
    closed(
        (ledger, verified),
        id,
        Status::Withdrawn,
        format!("withdrew proposal {id}"),
        args.json,
    )
    .await
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The proposal id.
    pub id: String,
    /// Print JSON for machines (keys documented in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn show(db: &str, args: &ShowArgs) -> CliResult {
    let id = parse_id(&args.id)?;
    let (ledger, mut verified) = open(db).await?;
    verified.stream(&ledger.store, LEDGER_STREAM).await?;
    let governance = ledger.governance().await.map_err(service_error)?;
    let sets = ledger.signer_sets().await.map_err(service_error)?;
    let state = verified_proposal(&ledger, &mut verified, id).await?;
    close(&ledger, &verified).await;
    if args.json {
        println!(
            "{}",
            proposal_json(&governance, &sets, &state, Utc::now(), true)
        );
    } else {
        print!("{}", proposal_text(&governance, &sets, &state, Utc::now()));
    }
    Ok(EXIT_OK)
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only proposals in this status: pending, committed, failed, rejected, withdrawn, expired.
    #[arg(long)]
    pub status: Option<String>,
    /// At most N proposals (oldest first).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print JSON for machines (keys documented in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The proposals (of one stored status, or all) as verified: the database's projection rows
/// must be exactly the verified ones, and each stream the verified events.
pub(crate) async fn verified_states(
    ledger: &Ledger,
    verified: &mut Verified,
    status: Option<&str>,
) -> Result<Vec<ProposalState>, CliError> {
    verified.stream(&ledger.store, LEDGER_STREAM).await?;
    let rows = verified.proposals(&ledger.store, status).await?;
    Ok(verified.states(&ledger.store, &rows).await?)
}

pub async fn list(db: &str, args: &ListArgs) -> CliResult {
    let wanted = match &args.status {
        None => None,
        Some(text) => Some(Status::parse(text).ok_or_else(|| {
            CliError::bad_input(format!(
                "--status {text:?}: use pending, committed, failed, rejected, withdrawn or expired"
            ))
        })?),
    };
    let (ledger, mut verified) = open(db).await?;
    let all = verified_states(&ledger, &mut verified, None).await?;
    let governance = ledger.governance().await.map_err(service_error)?;
    let sets = ledger.signer_sets().await.map_err(service_error)?;
    let now = Utc::now();
    let states: Vec<ProposalState> = all
        .into_iter()
        .filter(|state| wanted.is_none_or(|status| state.status_under(now, &governance) == status))
        .take(args.limit.unwrap_or(usize::MAX))
        .collect();
    close(&ledger, &verified).await;
    if args.json {
        let array: Vec<serde_json::Value> = states
            .iter()
            .map(|s| proposal_json(&governance, &sets, s, now, false))
            .collect();
        println!("{}", serde_json::Value::Array(array));
    } else if states.is_empty() {
        println!("no proposals");
    } else {
        println!(
            "{:<36}  {:<10}  {:<9}  {:<7}  {:<9}  summary",
            "proposal", "kind", "status", "verdict", "signed"
        );
        for state in &states {
            let view = proposal_json(&governance, &sets, state, now, false);
            println!(
                "{:<36}  {:<10}  {:<9}  {:<7}  {:<9}  {}",
                state.id,
                state.recorded.terms.kind.as_str(),
                view["status"].as_str().unwrap_or("?"),
                state.recorded.terms.verdict.as_deref().unwrap_or("-"),
                format!("{}/{}", state.cosignatures.len(), view["threshold"]),
                summary(state)
            );
        }
    }
    Ok(EXIT_OK)
}

#[derive(Debug, Args)]
pub struct InboxArgs {
    /// Your key: the inbox lists what it may still sign.
    #[arg(long)]
    pub key: PathBuf,
    /// Print JSON for machines (keys documented in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn inbox(db: &str, args: &InboxArgs) -> CliResult {
    let key = load_secret(&args.key)?;
    let key_id = key.public().key_id().to_string();
    let (ledger, mut verified) = open(db).await?;
    let pending = verified_states(&ledger, &mut verified, Some("pending")).await?;
    let governance = ledger.governance().await.map_err(service_error)?;
    let sets = ledger.signer_sets().await.map_err(service_error)?;
    let now = Utc::now();
    let mut mine = Vec::new();
    for state in pending {
        if state.status_under(now, &governance) != Status::Pending || state.has_signed(&key_id) {
            continue;
        }
        let may_sign = governance.set.by_key_id(&key_id).is_some()
            || crate::domain::approval::proposed_set(&state)
                .ok()
                .flatten()
                .is_some_and(|next| next.by_key_id(&key_id).is_some());
        if may_sign && state.recorded.terms.signer_set_version == governance.set.version {
            mine.push(state);
        }
    }
    close(&ledger, &verified).await;
    if args.json {
        let array: Vec<serde_json::Value> = mine
            .iter()
            .map(|s| proposal_json(&governance, &sets, s, now, false))
            .collect();
        println!("{}", serde_json::Value::Array(array));
    } else if mine.is_empty() {
        println!("nothing to sign for {}", name_of(&sets, &key_id));
    } else {
        for state in &mine {
            println!(
                "{}  expires {}  {}",
                state.id,
                state.recorded.terms.expires_at,
                summary(state)
            );
        }
    }
    Ok(EXIT_OK)
}

/// A request to sign offline: everything the subject digest covers, so the offline signer can
/// recompute it and see exactly what the signature binds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    pub format: String,
    pub ledger_id: String,
    pub proposal_id: String,
    pub kind: ProposalKind,
    pub body: String,
    pub report_json: Option<String>,
    pub policy_hash: String,
    pub policy_version: u64,
    pub signer_set_version: u64,
    pub created_at: String,
    pub expires_at: String,
    pub subject_digest: String,
    pub summary: String,
}

/// A signature made offline, for `rollbook attach`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    pub format: String,
    pub proposal_id: String,
    pub signature: SignatureEnvelope,
}

impl SignRequest {
    /// The proposal terms the request shows (a request carries no verdict or contracts: the
    /// subject digest does not cover them).
    fn terms(&self) -> ProposalTerms {
        ProposalTerms {
            proposal_id: self.proposal_id.clone(),
            kind: self.kind,
            body: self.body.clone(),
            report_json: self.report_json.clone(),
            verdict: None,
            contracts_requested: None,
            policy_version: self.policy_version,
            policy_hash: self.policy_hash.clone(),
            signer_set_version: self.signer_set_version,
            created_at: self.created_at.clone(),
            expires_at: self.expires_at.clone(),
        }
    }
}

const REQUEST_FORMAT: &str = "rollbook-sign-request/v1";
const SIGNATURE_FORMAT: &str = "rollbook-signature/v1";
/// Limit on request and signature files (a proposal is at most 1 MiB).
const OFFLINE_FILE_BYTES_MAX: usize = 4 * 1024 * 1024;

#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The proposal id.
    pub id: String,
    /// Where to write the request file.
    #[arg(long)]
    pub out: PathBuf,
}

pub async fn request(db: &str, args: &RequestArgs) -> CliResult {
    let id = parse_id(&args.id)?;
    let (ledger, mut verified) = open(db).await?;
    let state = check_decision_inputs(&ledger, &mut verified, id).await?;
    close(&ledger, &verified).await;
    if state.effective_status(Utc::now()) != Status::Pending {
        return Err(CliError::refused(format!(
            "proposal {id} is {}; there is nothing to sign",
            state.effective_status(Utc::now())
        )));
    }
    let r = &state.recorded.terms;
    let request = SignRequest {
        format: REQUEST_FORMAT.into(),
        ledger_id: ledger.ledger_id.to_string(),
        proposal_id: r.proposal_id.clone(),
        kind: r.kind,
        body: r.body.clone(),
        report_json: r.report_json.clone(),
        policy_hash: r.policy_hash.clone(),
        policy_version: r.policy_version,
        signer_set_version: r.signer_set_version,
        created_at: r.created_at.clone(),
        expires_at: r.expires_at.clone(),
        subject_digest: state.recorded.subject_digest.clone(),
        summary: summary(&state),
    };
    let text = serde_json::to_string_pretty(&request).expect("requests serialize");
    std::fs::write(&args.out, text).map_err(|e| {
        CliError::new(
            super::EXIT_IO,
            format!("cannot write {}: {e}", args.out.display()),
        )
    })?;
    println!(
        "wrote {}: sign it with `rollbook sign {id} --key KEY --offline --request {}`",
        args.out.display(),
        args.out.display()
    );
    Ok(EXIT_OK)
}

fn sign_offline(id: Uuid, key: &crate::crypto::keys::SecretKey, args: &SignArgs) -> CliResult {
    let path = args
        .request
        .as_ref()
        .expect("clap requires --request with --offline");
    let text = super::evaluate::read_input_file(path, OFFLINE_FILE_BYTES_MAX)?;
    let bad = |message: String| CliError::bad_input(format!("{}: {message}", path.display()));
    let request: SignRequest =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a sign request: {e}")))?;
    if request.format != REQUEST_FORMAT {
        return Err(bad(format!(
            "format {:?} is not {REQUEST_FORMAT:?}",
            request.format
        )));
    }
    let ledger_id =
        Uuid::parse_str(&request.ledger_id).map_err(|_| bad("ledger_id is not a UUID".into()))?;
    let proposal_id = Uuid::parse_str(&request.proposal_id)
        .map_err(|_| bad("proposal_id is not a UUID".into()))?;
    if proposal_id != id {
        return Err(bad(format!(
            "the request is for proposal {proposal_id}, not {id}"
        )));
    }
    // Recompute the digest from the content shown, so the signature binds what was reviewed.
    let digest = subject_digest_of(&ledger_id, &proposal_id, &request.terms());
    if to_hex(&digest) != request.subject_digest {
        return Err(bad(
            "the subject digest does not match the request's content: it was altered".into(),
        ));
    }
    eprintln!("signing offline: proposal {proposal_id} of ledger {ledger_id}");
    // The summary shown is derived from the digested body, never the request's free text.
    let shown = super::views::summary_of(request.kind, &request.body, request.policy_version);
    if shown != request.summary {
        eprintln!(
            "warning: the request's summary line differs from its content; showing the content"
        );
    }
    eprintln!("  {shown}");
    if let Some(report) = request
        .report_json
        .as_deref()
        .and_then(|json| serde_json::from_str::<crate::sizing::SizingReport>(json).ok())
    {
        eprintln!(
            "  verdict {} ({} requested, at most {})",
            report.verdict.as_str(),
            report.contracts_requested,
            report.contracts_max
        );
    }
    eprintln!("  subject digest {}", request.subject_digest);
    let message = signed_message(
        cosign_purpose(request.kind),
        &ledger_id,
        &proposal_id,
        request.signer_set_version,
        &digest,
        None,
    );
    let file = SignatureFile {
        format: SIGNATURE_FORMAT.into(),
        proposal_id: proposal_id.to_string(),
        signature: seal_signature(key, message),
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{proposal_id}.sig.json")));
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&file).expect("signature files serialize"),
    )
    .map_err(|e| {
        CliError::new(
            super::EXIT_IO,
            format!("cannot write {}: {e}", out.display()),
        )
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({"proposal_id": proposal_id.to_string(), "signature_file": out.display().to_string()})
        );
    } else {
        println!(
            "wrote {}: record it with `rollbook attach {}`",
            out.display(),
            out.display()
        );
    }
    Ok(EXIT_OK)
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// A signature file written by `rollbook sign --offline`.
    pub file: PathBuf,
    /// Print JSON for machines (keys documented in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn attach(db: &str, args: &AttachArgs) -> CliResult {
    let text = super::evaluate::read_input_file(&args.file, OFFLINE_FILE_BYTES_MAX)?;
    let bad = |message: String| CliError::bad_input(format!("{}: {message}", args.file.display()));
    let file: SignatureFile =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a signature file: {e}")))?;
    if file.format != SIGNATURE_FORMAT {
        return Err(bad(format!(
            "format {:?} is not {SIGNATURE_FORMAT:?}",
            file.format
        )));
    }
    let id = parse_id(&file.proposal_id)?;
    let (ledger, mut verified) = open(db).await?;
    check_decision_inputs(&ledger, &mut verified, id).await?;
    let outcome = ledger
        .attach(id, file.signature, Utc::now())
        .await
        .map_err(service_error)?;
    let sets = ledger.signer_sets().await.map_err(service_error)?;
    print_outcome(&ledger, &sets, &outcome, id, args.json);
    close(&ledger, &verified).await;
    Ok(EXIT_OK)
}

/// Short times to live leave signers no time to sign, governance motions included.
pub(crate) fn ttl_warning(policy: &crate::sizing::Policy) -> Option<String> {
    let ttl = policy.approval.proposal_ttl_seconds;
    (ttl < 300).then(|| {
        format!("approval.proposal_ttl_seconds = {ttl}: proposals, policy motions included, expire before most signers can sign")
    })
}
