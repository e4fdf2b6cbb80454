//! The commands people type every day: init, propose, sign, reject, withdraw, inbox, show, list,
//! and offline signing (request / sign --offline / attach).

use std::path::PathBuf;

use chrono::Utc;
use clap::Args;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::display::{
    esay, motion_json, motion_lines, motion_view, say, shown, signer_lines, signers_json,
    MotionView,
};
use super::ids::{parse_id, resolve, IdText};
use super::keys::{load_signer_set, KeyArgs};
use super::views::{name_of, proposal_json, proposal_text, summary, History};
use super::{CliError, CliResult, EXIT_CHECK_FAILED, EXIT_OK};
use crate::crypto::canonical::{decode_signed_message, offline_signed_message, ChainHead};
use crate::crypto::{from_hex32, to_hex};
use crate::domain::approval::{cosign_purpose, subject_digest_of, ProposalState, Status};
use crate::domain::envelope::{format_timestamp, parse_timestamp, StoredEvent};
use crate::domain::events::{Event, ProposalKind, ProposalTerms, SignatureEnvelope, LEDGER_STREAM};
use crate::domain::governance::{ActiveSet, Governance};
use crate::pin::Verified;
use crate::service::{self, Ledger, ServiceError};
use crate::store::Store;

pub(crate) fn service_error(error: ServiceError) -> CliError {
    match error {
        ServiceError::Refused(refusal) => CliError::refused(refusal.to_string()),
        ServiceError::Store(store) => store.into(),
        ServiceError::Pin(pin) => pin.into(),
        ServiceError::BadInput(message) | ServiceError::NotFound(message) => {
            CliError::bad_input(message)
        }
        ServiceError::Corrupt(_) => CliError::new(EXIT_CHECK_FAILED, error.to_string()),
        // A key that could not sign (an ssh-agent refusing or gone): nothing was recorded.
        ServiceError::Signing(error) => CliError::bad_input(error.to_string()),
    }
}

/// The ledger of `db`, verified from this client's pin to its head, and the verified state
/// to read it through (`pin::Verified`).
pub(crate) async fn open(db: &str) -> Result<(Ledger, Verified), CliError> {
    let (store, ledger_id, verified) = super::open_verified(db).await?;
    Ok((Ledger::new(store, ledger_id), verified))
}

/// Closes the ledger's store and the state file, both at once: each close may checkpoint its
/// WAL into its database and sync both files, on its own connection's thread, so the two
/// overlap rather than add up.
pub(crate) async fn close(ledger: &Ledger, verified: &Verified) {
    tokio::join!(ledger.store.close(), verified.close());
}

/// A proposal as verified (`pin::Verified::proposal`); unknown ids are bad input, as before.
pub(crate) async fn verified_proposal(
    ledger: &Ledger,
    verified: &mut Verified,
    id: Uuid,
) -> Result<ProposalState, CliError> {
    verified
        .proposal(&ledger.store, id)
        .await?
        .ok_or_else(|| no_such_proposal(ledger, id))
}

fn no_such_proposal(ledger: &Ledger, id: Uuid) -> CliError {
    CliError::bad_input(format!(
        "no proposal {id} in ledger {}; `rollbook list` shows them",
        ledger.ledger_id
    ))
}

/// Before a decision: the governance stream and the proposal it acts on are the verified
/// ones (a row deleted or edited before the pin would otherwise decide it).
pub(crate) async fn check_decision_inputs(
    ledger: &Ledger,
    verified: &mut Verified,
    id: Uuid,
) -> Result<ProposalState, CliError> {
    Ok(check_decision_inputs_with_history(ledger, verified, id)
        .await?
        .0)
}

/// `check_decision_inputs`, with the governance in force and the history of the verified
/// `ledger` stream (what `sign` shows before signing), folded once.
pub(crate) async fn check_decision_inputs_with_history(
    ledger: &Ledger,
    verified: &mut Verified,
    id: Uuid,
) -> Result<(ProposalState, Governance, History), CliError> {
    let events = verified.stream(&ledger.store, LEDGER_STREAM).await?;
    let (governance, history) = governance_and_history(ledger, &events)?;
    // Both streams were verified by the pin (adoptions, signatures and the recording's report
    // included): the decision next need not verify them again.
    ledger.remember_verified_governance(&events, &governance);
    let (state, stream) = verified
        .proposal_and_stream(&ledger.store, id)
        .await?
        .ok_or_else(|| no_such_proposal(ledger, id))?;
    ledger.remember_verified_stream(&stream);
    Ok((state, governance, history))
}

/// The hash of seq 1, the first event of the `ledger` stream `events`.
fn genesis_hash_of(events: &[crate::domain::envelope::StoredEvent]) -> Result<String, CliError> {
    events
        .first()
        .filter(|e| e.seq == 1)
        .map(|e| to_hex(&e.hash))
        .ok_or_else(|| {
            service_error(ServiceError::Corrupt(
                "the ledger stream does not start at seq 1".into(),
            ))
        })
}

/// The ledger's governance history for the views: its genesis hash, its signer sets and its
/// policies by version (genesis first, then each adoption), from the `ledger` stream as this
/// client's pin verified it (a second, unchecked read could show other sets and keys).
pub(crate) async fn history(ledger: &Ledger, verified: &Verified) -> Result<History, CliError> {
    Ok(verified_governance(ledger, verified).await?.1)
}

/// The governance in force and its history, both folded from the `ledger` stream as this
/// client's pin verified it: what a view shows of signers, keys and policies.
pub(crate) async fn verified_governance(
    ledger: &Ledger,
    verified: &Verified,
) -> Result<(Governance, History), CliError> {
    let events = verified.stream(&ledger.store, LEDGER_STREAM).await?;
    governance_and_history(ledger, &events)
}

/// The governance in force after the `ledger` stream `events` (as read, or as the pin verified
/// them) and its history: the genesis hash, and every signer set and policy by version, each
/// noted as the fold adopts it (a set's keys are parsed and checked once).
fn governance_and_history(
    ledger: &Ledger,
    events: &[StoredEvent],
) -> Result<(Governance, History), CliError> {
    let genesis_hash = genesis_hash_of(events)?;
    let (mut sets, mut policies) = (Vec::<ActiveSet>::new(), Vec::<(u64, String)>::new());
    let governance = Governance::fold_ledger_stream(ledger.ledger_id, events, |in_force| {
        if sets
            .last()
            .is_none_or(|set| set.version != in_force.set.version)
        {
            sets.push(in_force.set.clone());
        }
        if policies
            .last()
            .is_none_or(|(version, _)| *version != in_force.policy_version)
        {
            policies.push((in_force.policy_version, in_force.policy_json.clone()));
        }
    })
    .map_err(|r| service_error(ServiceError::Corrupt(r.to_string())))?;
    let history = History {
        sets,
        policies,
        genesis_hash,
    };
    Ok((governance, history))
}

/// A full proposal id, as files carry it.
pub(crate) fn parse_full_id(text: &str) -> Result<Uuid, CliError> {
    Uuid::parse_str(text).map_err(|_| {
        CliError::bad_input(format!(
            "{text:?} is not a proposal id (a UUID, as `rollbook list` shows)"
        ))
    })
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Signers file (TOML): `threshold = K` and `[[signers]]` with name, role, public_key_file,
    /// and optionally the key's lifetime `valid_after` / `valid_before` (RFC 3339).
    #[arg(long)]
    pub signers: PathBuf,
    /// Policy file overriding any subset of the default policy.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Print JSON for machines (keys documented in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn init(db: &str, args: &InitArgs) -> CliResult {
    let set = load_signer_set(&args.signers, 1)?;
    let policy = super::evaluate::load_policy(args.policy.as_deref())?;
    let key = args.key.signer()?;
    let store = Store::open(db).await?;
    let (ledger_id, governance) = service::init(&store, &set, &policy, &key, Utc::now())
        .await
        .map_err(service_error)?;
    let genesis_hash = genesis_hash_of(&store.read_stream(ledger_id, LEDGER_STREAM).await?)?;
    store.close().await;
    let mut warnings = set.threshold_warnings(policy.approval.proposer_counts);
    warnings.extend(ttl_warning(&policy));
    // This machine's clock: a warning, not a decision (init refused a set that could decide
    // nothing on the ledger's clock).
    let now = Utc::now();
    warnings.extend(set.lifetime_warning(
        now,
        now + chrono::Duration::seconds(policy.approval.proposal_ttl_seconds as i64),
    ));
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
                "signer_keys": signers_json(&set),
                "genesis_hash": genesis_hash,
                "policy_hash": governance.policy_hash,
                "warnings": warnings,
            })
        );
    } else {
        say!("created ledger {ledger_id}");
        say!("  genesis   {genesis_hash}");
        say!("  signers   {} of {}:", set.threshold, set.signers.len());
        for line in signer_lines(&set) {
            say!("    {line}");
        }
        say!("  policy    v1 {}", governance.policy_hash);
        say!("  pin the genesis hash and these key ids: `rollbook verify --genesis {genesis_hash}` checks that a ledger is this one");
    }
    Ok(EXIT_OK)
}

#[derive(Debug, Args)]
pub struct ProposeArgs {
    /// The roll proposal (TOML; fields as in docs/methodology.md).
    pub file: PathBuf,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Print JSON for machines (keys documented in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn propose(db: &str, args: &ProposeArgs) -> CliResult {
    let body = super::evaluate::read_input_file(&args.file, crate::sizing::FILE_BYTES_MAX)?;
    super::evaluate::proposal_from_input(&args.file, &body)?;
    let key = args.key.signer()?;
    let (ledger, mut verified) = open(db).await?;
    verified.stream(&ledger.store, LEDGER_STREAM).await?;
    let (state, report) = ledger
        .propose_roll_pinned(body, &key, Utc::now(), &mut verified)
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
                "drawn": report.drawn,
                "expires_at": state.recorded.terms.expires_at,
            })
        );
    } else {
        println!("recorded proposal {} [{}]", state.id, status);
        say!("  {}", summary(&state));
        let drawn = &report.drawn;
        say!(
            "  closed layer {}: {:.2} USD and {} contracts already drawn by {} other proposals",
            drawn.closed_layer_id.as_deref().unwrap_or("-"),
            drawn.outlay_usd,
            drawn.contracts,
            drawn.proposal_ids.len()
        );
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
    /// The proposal id: the whole id, its short id (as `list` shows) or its first 8+ characters.
    pub id: String,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Sign a request file on a machine without the database (see `rollbook request`).
    #[arg(long, requires = "request")]
    pub offline: bool,
    /// The request file to sign with --offline.
    #[arg(long)]
    pub request: Option<PathBuf>,
    /// Where --offline writes the signature file (default: ID.sig.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// With --offline: replace the signature file if it exists (without it, it is refused).
    #[arg(long, requires = "offline")]
    pub force: bool,
    /// Print JSON for machines (keys documented in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

fn print_outcome(
    ledger: &Ledger,
    sets: &[crate::domain::governance::ActiveSet],
    outcome: &crate::domain::approval::SignOutcome,
    id: Uuid,
    motion: Option<&MotionView>,
    json: bool,
) {
    let counted: Vec<String> = outcome
        .tally
        .counted
        .iter()
        .map(|k| name_of(sets, k))
        .collect();
    if json {
        let mut object = serde_json::json!({
            "proposal_id": id.to_string(),
            "status": if outcome.committed { "committed" } else { "pending" },
            "counted": counted,
            "threshold": outcome.tally.threshold,
            "missing": outcome.tally.missing,
            "ledger_id": ledger.ledger_id.to_string(),
        });
        if let Some(view) = motion {
            motion_json(view, &mut object);
        }
        println!("{object}");
    } else if outcome.committed {
        say!(
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
        say!("{line}");
    }
}

pub async fn sign(db: &str, args: &SignArgs) -> CliResult {
    let id_text = parse_id(&args.id)?;
    let key = args.key.signer()?;
    if args.offline {
        return sign_offline(&id_text, &key, args);
    }
    let (ledger, mut verified) = open(db).await?;
    let id = resolve(&ledger, &id_text).await?;
    let (state, governance, before) =
        check_decision_inputs_with_history(&ledger, &mut verified, id).await?;
    // What is signed, in the layout `show` prints (on stderr: stdout is the outcome).
    esay!("signing:");
    for line in super::views::signing_view(&governance, &before, &state, verified.ledger_clock) {
        esay!("{line}");
    }
    let outcome = ledger
        .sign(id, &key, Utc::now())
        .await
        .map_err(service_error)?;
    // A committed signer-set motion adds its set, whose names the outcome uses: read again.
    let sets = if outcome.committed && state.recorded.terms.kind == ProposalKind::SignerSet {
        ledger.signer_sets().await.map_err(service_error)?
    } else {
        before.sets.clone()
    };
    let motion = before.motion(&state).and_then(Result::ok);
    print_outcome(&ledger, &sets, &outcome, id, motion.as_ref(), args.json);
    close(&ledger, &verified).await;
    Ok(EXIT_OK)
}

#[derive(Debug, Args)]
pub struct RejectArgs {
    /// The proposal id: the whole id, its short id (as `list` shows) or its first 8+ characters.
    pub id: String,
    #[command(flatten)]
    pub key: KeyArgs,
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
        format!("rejected proposal {id}: {}", shown(&args.reason)),
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
    key: &KeyArgs,
) -> Result<(Uuid, crate::crypto::Signer, Ledger, Verified), CliError> {
    let id_text = parse_id(id)?;
    let key = key.signer()?;
    let (ledger, mut verified) = open(db).await?;
    let id = resolve(&ledger, &id_text).await?;
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
    /// The proposal id: the whole id, its short id (as `list` shows) or its first 8+ characters.
    pub id: String,
    #[command(flatten)]
    pub key: KeyArgs,
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
    /// The proposal id: the whole id, its short id (as `list` shows) or its first 8+ characters.
    pub id: String,
    /// Print JSON for machines (keys documented in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn show(db: &str, args: &ShowArgs) -> CliResult {
    let id_text = parse_id(&args.id)?;
    let (ledger, mut verified) = open(db).await?;
    let id = resolve(&ledger, &id_text).await?;
    let (governance, history) = verified_governance(&ledger, &verified).await?;
    let state = verified_proposal(&ledger, &mut verified, id).await?;
    let executions = if state.executions > 0 {
        executions_of(&verified.stream(&ledger.store, &id.to_string()).await?)
    } else {
        Vec::new()
    };
    close(&ledger, &verified).await;
    if args.json {
        let mut object = proposal_json(&governance, &history, &state, verified.ledger_clock, true);
        if !executions.is_empty() {
            object["execution_events"] = super::views::execution_json(&executions);
        }
        println!("{object}");
    } else {
        print!(
            "{}",
            proposal_text(&governance, &history, &state, verified.ledger_clock)
        );
        for line in super::views::execution_lines(&executions, &history.sets) {
            say!("{line}");
        }
    }
    Ok(EXIT_OK)
}

/// A roll's `roll.executed` events as verified: (seq, event id, recorded_at, payload).
fn executions_of(
    events: &[crate::domain::envelope::StoredEvent],
) -> Vec<(u64, String, String, crate::domain::events::RollExecuted)> {
    events
        .iter()
        .filter_map(|event| {
            match Event::from_payload(&event.event_type, event.schema_version, &event.payload) {
                Ok(Event::RollExecuted(executed)) => Some((
                    event.seq,
                    event.event_id.to_string(),
                    event.recorded_at.clone(),
                    executed,
                )),
                _ => None,
            }
        })
        .collect()
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

#[derive(Debug, Args)]
pub struct InboxArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    /// Print JSON for machines (keys documented in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Whether `key_id` may still sign `state` at `now`: pending, not signed by it, bound to the
/// signer set in force, and the key a signer of that set (or of the set a motion proposes).
/// What `inbox` lists and `watch` reports as a proposal to sign.
pub(crate) fn may_still_sign(
    state: &ProposalState,
    governance: &crate::domain::governance::Governance,
    now: chrono::DateTime<Utc>,
    key_id: &str,
) -> bool {
    if state.status_under(now, governance) != Status::Pending || state.has_signed(key_id) {
        return false;
    }
    let may_sign = governance.set.by_key_id(key_id).is_some()
        || crate::domain::approval::proposed_set(state)
            .ok()
            .flatten()
            .is_some_and(|next| next.by_key_id(key_id).is_some());
    may_sign && state.recorded.terms.signer_set_version == governance.set.version
}

pub async fn inbox(db: &str, args: &InboxArgs) -> CliResult {
    let key_id = args.key.public_key()?.key_id().to_string();
    let (ledger, mut verified) = open(db).await?;
    let pending = verified_states(&ledger, &mut verified, Some("pending")).await?;
    let governance = ledger.governance().await.map_err(service_error)?;
    let history = history(&ledger, &verified).await?;
    // Expiry on the ledger's clock, read by the sync.
    let now = verified.ledger_clock;
    let mut mine = Vec::new();
    for state in pending {
        if may_still_sign(&state, &governance, now, &key_id) {
            mine.push(state);
        }
    }
    close(&ledger, &verified).await;
    if args.json {
        let array: Vec<serde_json::Value> = mine
            .iter()
            .map(|s| proposal_json(&governance, &history, s, now, false))
            .collect();
        println!("{}", serde_json::Value::Array(array));
    } else if mine.is_empty() {
        say!("nothing to sign for {}", name_of(&history.sets, &key_id));
    } else {
        for state in &mine {
            say!(
                "{}  expires {}  {}",
                state.id,
                state.recorded.terms.expires_at,
                summary(state)
            );
            for line in history.motion_lines(state) {
                say!("    {line}");
            }
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
    /// The head this client verified when it wrote the request: the signature binds it, so it
    /// covers every event up to it (the signer set in force included).
    pub head_seq: u64,
    pub head_hash: String,
    /// The hash of the signer set the proposal is bound to (`signer_set_hash` in
    /// docs/audit-format.md): digested, so the signature binds it.
    pub signer_set_hash: String,
    pub summary: String,
    /// For a motion: the signer set (its JSON) or the policy (its canonical JSON) in force that
    /// the motion replaces, so the offline signer sees what changes. Checked against
    /// `signer_set_hash` or `policy_hash`, which the digest covers: a request that states
    /// another set or policy in force is refused, or its signature does not verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_force: Option<String>,
    /// What the motion changes, for people; `sign --offline` recomputes it from `in_force` and
    /// `body` and shows its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
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
            signer_set_hash: self.signer_set_hash.clone(),
            created_at: self.created_at.clone(),
            expires_at: self.expires_at.clone(),
        }
    }
}

// Versioned with the ledger format: an older request's subject digest is over other tags and
// fields, which this signer would otherwise report as "altered".
const REQUEST_FORMAT: &str = "rollbook-sign-request/v4";
const SIGNATURE_FORMAT: &str = "rollbook-signature/v4";
/// Limit on request and signature files (a proposal is at most 1 MiB).
const OFFLINE_FILE_BYTES_MAX: usize = 4 * 1024 * 1024;

#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The proposal id: the whole id, its short id (as `list` shows) or its first 8+ characters.
    pub id: String,
    /// Where to write the request file.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the file at --out if it exists (without it, an existing file is refused).
    #[arg(long)]
    pub force: bool,
}

pub async fn request(db: &str, args: &RequestArgs) -> CliResult {
    let id_text = parse_id(&args.id)?;
    super::may_write(&args.out, args.force)?;
    let (ledger, mut verified) = open(db).await?;
    let id = resolve(&ledger, &id_text).await?;
    let state = check_decision_inputs(&ledger, &mut verified, id).await?;
    let history = history(&ledger, &verified).await?;
    close(&ledger, &verified).await;
    let status = state.effective_status(verified.ledger_clock);
    if status != Status::Pending {
        return Err(CliError::refused(format!(
            "proposal {id} is {status}; there is nothing to sign"
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
        head_seq: verified.seq,
        head_hash: to_hex(&verified.head_hash),
        signer_set_hash: r.signer_set_hash.clone(),
        summary: summary(&state),
        in_force: history.in_force(&state),
        changes: history.motion_lines(&state),
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

fn sign_offline(id_text: &IdText, key: &crate::crypto::Signer, args: &SignArgs) -> CliResult {
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
    if !id_text.names(&proposal_id) {
        return Err(bad(format!(
            "the request is for proposal {proposal_id}, not {}",
            args.id
        )));
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{proposal_id}.sig.json")));
    super::may_write(&out, args.force)?;
    // Recompute the digest from the content shown, so the signature binds what was reviewed.
    let digest = subject_digest_of(&ledger_id, &proposal_id, &request.terms());
    if to_hex(&digest) != request.subject_digest {
        return Err(bad(
            "the subject digest does not match the request's content: it was altered".into(),
        ));
    }
    esay!("signing offline: proposal {proposal_id} of ledger {ledger_id}");
    // The summary shown is derived from the digested body, never the request's free text.
    let summary = super::views::summary_of(request.kind, &request.body, request.policy_version);
    if summary != request.summary {
        eprintln!(
            "warning: the request's summary line differs from its content; showing the content"
        );
    }
    esay!("  {summary}");
    let motion = show_offline_changes(&request).map_err(bad)?;
    // A roll as `sign` shows it online: its terms from the body and every guardrail check from
    // the report, both covered by the digest just checked.
    if request.kind == ProposalKind::Roll {
        for line in super::views::roll_lines(&request.body) {
            esay!("{line}");
        }
    }
    if let Some(report) = request
        .report_json
        .as_deref()
        .and_then(|json| serde_json::from_str::<crate::sizing::SizingReport>(json).ok())
    {
        esay!(
            "  verdict {} ({} requested, at most {})",
            report.verdict.as_str(),
            report.contracts_requested,
            report.contracts_max
        );
        for line in super::views::guardrail_lines(request.policy_version, &report) {
            esay!("{line}");
        }
    }
    esay!("  subject digest {}", request.subject_digest);
    let head = ChainHead {
        seq: request.head_seq,
        hash: from_hex32(&request.head_hash)
            .map_err(|_| bad("head_hash is not 64 lowercase hex digits".into()))?,
    };
    if head.seq == 0 {
        return Err(bad(
            "head_seq is 0: a request binds a head after the proposal's recording".into(),
        ));
    }
    esay!(
        "  binds the ledger up to seq {} (hash {}); signer set v{} hash {}",
        head.seq,
        request.head_hash,
        request.signer_set_version,
        request.signer_set_hash
    );
    // The signature records when it was made (check T3): refused at `attach` if that is after
    // the expiry, or off the proposal's life on the ledger's clock by more than the skew.
    let signed_at = Utc::now();
    if parse_timestamp(&request.expires_at).is_some_and(|expires_at| signed_at > expires_at) {
        return Err(CliError::refused(format!(
            "proposal {proposal_id} expired at {} by this machine's clock ({}); there is nothing to sign",
            request.expires_at,
            format_timestamp(signed_at)
        )));
    }
    let message = offline_signed_message(
        cosign_purpose(request.kind),
        &ledger_id,
        &proposal_id,
        request.signer_set_version,
        &digest,
        &head,
        &format_timestamp(signed_at),
    );
    let file = SignatureFile {
        format: SIGNATURE_FORMAT.into(),
        proposal_id: proposal_id.to_string(),
        signature: service::seal_with(key, message)
            .map_err(|error| CliError::bad_input(error.to_string()))?,
    };
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
        let mut object = serde_json::json!({"proposal_id": proposal_id.to_string(), "signature_file": out.display().to_string()});
        if let Some(view) = &motion {
            motion_json(view, &mut object);
        }
        println!("{object}");
    } else {
        println!(
            "wrote {}: record it with `rollbook attach {}`",
            out.display(),
            out.display()
        );
    }
    Ok(EXIT_OK)
}

/// What an offline signer is shown of a motion: its changes, recomputed from the request's
/// `in_force` and `body`, and for a signer set the complete next set with its key ids (the part
/// the signature covers). A motion's request without `in_force`, or whose `in_force` does not
/// hash to the digested `policy_hash` or `signer_set_hash`, was altered: refused. Returns the
/// changes shown (none for a roll).
fn show_offline_changes(request: &SignRequest) -> Result<Option<MotionView>, String> {
    let view = match (request.kind, request.in_force.as_deref()) {
        (ProposalKind::Roll, _) => return Ok(None),
        // `request` always writes it for a motion: without it nothing the signer sees says what
        // the motion changes (for a policy, not even the values), so nothing is signed.
        (kind, None) => {
            return Err(format!(
                "the request for this {} motion carries no in_force, so what it changes cannot be shown: it was altered (write it again with `rollbook request`)",
                kind.as_str()
            ))
        }
        (ProposalKind::Policy, Some(json)) => {
            let hash = to_hex(&crate::crypto::canonical::policy_hash(json));
            if hash != request.policy_hash {
                return Err(format!(
                    "in_force is not the policy the request is bound to (its hash is {hash}, the request's policy_hash {}): it was altered",
                    request.policy_hash
                ));
            }
            motion_view(request.kind, &request.body, None, Some(json))
        }
        (ProposalKind::SignerSet, Some(json)) => {
            let set =
                ActiveSet::parse(json).map_err(|e| format!("in_force is not a signer set: {e}"))?;
            if set.version != request.signer_set_version {
                return Err(format!(
                    "in_force is signer set v{}, but the request is bound to v{}",
                    set.version, request.signer_set_version
                ));
            }
            let hash = to_hex(&crate::crypto::canonical::signer_set_hash(json));
            if hash != request.signer_set_hash {
                return Err(format!(
                    "in_force hashes to {hash}, not the request's signer_set_hash {}: it was altered",
                    request.signer_set_hash
                ));
            }
            // The subject digest binds `signer_set_hash`, checked above against this set: had
            // the request stated another set in force, the ledger's recording would carry
            // another hash, and this signature would not verify there.
            esay!(
                "    against signer set v{} in force (hash {hash}; the signature binds it)",
                set.version
            );
            motion_view(request.kind, &request.body, Some(&set), None)
        }
    };
    let view = view.expect("a motion")?;
    let lines = motion_lines(&view);
    if lines != request.changes {
        eprintln!(
            "warning: the request's lines of changes differ from its content; showing the content"
        );
    }
    for line in &lines {
        esay!("    {line}");
    }
    Ok(Some(view))
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
    let id = parse_full_id(&file.proposal_id)?;
    let (ledger, mut verified) = open(db).await?;
    check_decision_inputs(&ledger, &mut verified, id).await?;
    check_bound_head_verified(&verified, id, &file.signature).await?;
    let outcome = ledger
        .attach(id, file.signature, Utc::now())
        .await
        .map_err(service_error)?;
    let sets = ledger.signer_sets().await.map_err(service_error)?;
    print_outcome(&ledger, &sets, &outcome, id, None, args.json);
    close(&ledger, &verified).await;
    Ok(EXIT_OK)
}

/// An offline signature's bound head must be an event this client verified. The service reads
/// the hash at that seq from the database, where a row replaced with its own hash recomputed
/// would match, and the event would then be refused by every client's next sync (A11): a
/// ledger wedged. A message that does not decode, is for another ledger or proposal, or binds
/// a head past the pin is left to the service, which names what is wrong.
async fn check_bound_head_verified(
    verified: &Verified,
    proposal_id: Uuid,
    signature: &SignatureEnvelope,
) -> Result<(), CliError> {
    let bound = crate::crypto::from_hex(&signature.message)
        .ok()
        .and_then(|message| decode_signed_message(&message).ok())
        .filter(|d| (d.ledger_id, d.proposal_id) == (verified.ledger_id, proposal_id))
        .map(|decoded| decoded.head);
    let Some(bound) = bound else { return Ok(()) };
    match verified.verified_hash_at(bound.seq).await? {
        Some(hash) if hash != bound.hash => Err(CliError::refused(format!(
            "the signature binds the head at seq {} with hash {}, but this client verified {} there: the database's event at that seq was replaced, or the request was written on another history",
            bound.seq,
            to_hex(&bound.hash),
            to_hex(&hash)
        ))),
        _ => Ok(()),
    }
}

/// Short times to live leave signers no time to sign, governance motions included.
pub(crate) fn ttl_warning(policy: &crate::sizing::Policy) -> Option<String> {
    let ttl = policy.approval.proposal_ttl_seconds;
    (ttl < 300).then(|| {
        format!("approval.proposal_ttl_seconds = {ttl}: proposals, policy motions included, expire before most signers can sign")
    })
}
