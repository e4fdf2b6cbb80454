//! How proposals look on screen and in JSON. The JSON keys of `show`, `list` and `inbox` are a
//! contract for scripts (README.md, "JSON output"): add keys, never rename or remove them.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::display::{motion_json, motion_lines, motion_view, shown, MotionView};
use crate::domain::approval::{tally, ProposalState, Status};
use crate::domain::events::{ProposalKind, RollExecuted};
use crate::domain::governance::{ActiveSet, Governance};
use crate::sizing::{Proposal, SizingReport};

/// What a view needs of a ledger's governance history: every signer set it has had, and every
/// policy (version, canonical JSON), oldest first; a motion is shown against the set or policy
/// it is bound to.
pub struct History {
    /// The hash of seq 1: with the key ids of the set in force, what a reviewer pins.
    pub genesis_hash: String,
    pub sets: Vec<ActiveSet>,
    pub policies: Vec<(u64, String)>,
}

impl History {
    /// The signer set `state` is bound to (the set in force when it was recorded).
    fn bound_set(&self, state: &ProposalState) -> Option<&ActiveSet> {
        self.set_version(state.recorded.terms.signer_set_version)
    }

    /// The signer set of `version`, when the ledger has had it.
    pub fn set_version(&self, version: u64) -> Option<&ActiveSet> {
        self.sets.iter().find(|set| set.version == version)
    }

    /// The policy (canonical JSON) `state` is bound to.
    fn bound_policy(&self, state: &ProposalState) -> Option<&str> {
        let version = state.recorded.terms.policy_version;
        self.policies
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, json)| json.as_str())
    }

    /// What a motion replaces, as the ledger holds it: the bound set's JSON or the bound
    /// policy's canonical JSON (`None` for a roll).
    pub fn in_force(&self, state: &ProposalState) -> Option<String> {
        match state.recorded.terms.kind {
            ProposalKind::Roll => None,
            ProposalKind::SignerSet => self.bound_set(state).map(ActiveSet::to_json),
            ProposalKind::Policy => self.bound_policy(state).map(str::to_string),
        }
    }

    /// What `state` would change, if it is a motion (`None` for a roll).
    pub fn motion(&self, state: &ProposalState) -> Option<Result<MotionView, String>> {
        let terms = &state.recorded.terms;
        motion_view(
            terms.kind,
            &terms.body,
            self.bound_set(state),
            self.bound_policy(state),
        )
    }

    /// A motion's changes as indented lines for people (none for a roll).
    pub fn motion_lines(&self, state: &ProposalState) -> Vec<String> {
        match self.motion(state) {
            None => Vec::new(),
            Some(Ok(view)) => motion_lines(&view),
            Some(Err(reason)) => vec![format!("changes cannot be shown: {reason}")],
        }
    }
}

/// Key id -> name over every signer set the ledger has had (newest name wins).
pub fn name_of(sets: &[ActiveSet], key_id: &str) -> String {
    sets.iter()
        .rev()
        .find_map(|set| set.by_key_id(key_id).map(|s| s.name.clone()))
        .unwrap_or_else(|| key_id.to_string())
}

/// The id people type and read: a UUIDv7 begins with its time (proposals made together share
/// it), so the short id is its random tail, the last 12 hex digits.
pub fn short_id(id: &uuid::Uuid) -> String {
    let text = id.to_string();
    text[text.len() - super::ids::SHORT_ID_CHARS..].to_string()
}

/// One line saying what the proposal asks for.
pub fn summary(state: &ProposalState) -> String {
    summary_of(
        state.recorded.terms.kind,
        &state.recorded.terms.body,
        state.recorded.terms.policy_version,
    )
}

/// One line saying what a proposal body asks for, derived from the body itself (never from
/// free text beside it), so it shows exactly what a signature's digest covers.
pub fn summary_of(kind: ProposalKind, body: &str, policy_version: u64) -> String {
    match kind {
        ProposalKind::Roll => match Proposal::from_toml_str(body) {
            Ok(p) => {
                let layer = &p.next_layer;
                let outlay =
                    f64::from(layer.contracts) * layer.premium_usd * f64::from(layer.multiplier);
                format!(
                    "roll {} x VIX {} call exp {} at {:.2} (outlay {:.2} USD){}",
                    layer.contracts,
                    layer.strike,
                    layer.expiry,
                    layer.premium_usd,
                    outlay,
                    if p.roll.note.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", p.roll.note)
                    }
                )
            }
            Err(_) => "roll (unreadable body)".into(),
        },
        ProposalKind::SignerSet => match ActiveSet::parse(body) {
            Ok(set) => format!(
                "signer set v{}: {} of {} ({})",
                set.version,
                set.threshold,
                set.signers.len(),
                set.names().join(", ")
            ),
            Err(_) => "signer set (unreadable body)".into(),
        },
        ProposalKind::Policy => format!(
            "policy v{} with hash {}",
            policy_version + 1,
            crate::crypto::to_hex(&crate::crypto::canonical::policy_hash(body))
        ),
    }
}

pub fn report_of(state: &ProposalState) -> Option<SizingReport> {
    state
        .recorded
        .terms
        .report_json
        .as_deref()
        .and_then(|json| serde_json::from_str(json).ok())
}

/// The JSON object of one proposal (the `show` contract; `list` drops `report`).
pub fn proposal_json(
    governance: &Governance,
    history: &History,
    state: &ProposalState,
    now: DateTime<Utc>,
    with_report: bool,
) -> Value {
    let sets = &history.sets;
    let status = state.status_under(now, governance);
    let report = report_of(state);
    let (threshold, missing) = threshold_and_missing(governance, history, state, status);
    let signatures: Vec<Value> = state
        .cosignatures
        .iter()
        .map(|c| json!({"name": name_of(sets, &c.key_id), "key_id": c.key_id, "at": c.recorded_at}))
        .collect();
    let mut object = json!({
        "proposal_id": state.id.to_string(),
        "short_id": short_id(&state.id),
        "kind": state.recorded.terms.kind.as_str(),
        "status": status.as_str(),
        "verdict": state.recorded.terms.verdict,
        "summary": summary(state),
        "proposer": name_of(sets, state.proposer()),
        "proposer_key_id": state.proposer(),
        "threshold": threshold,
        "signatures": signatures,
        "missing": missing,
        "created_at": state.recorded.terms.created_at,
        "expires_at": state.recorded.terms.expires_at,
        "closed_at": state.closed_at,
        "contracts_requested": state.recorded.terms.contracts_requested,
        "contracts_max": report.as_ref().map(|r| r.contracts_max),
        "failed_checks": report.as_ref().map(|r| r.failed_check_ids()),
        "policy_version": state.recorded.terms.policy_version,
        "policy_hash": state.recorded.terms.policy_hash,
        "signer_set_version": state.recorded.terms.signer_set_version,
        "subject_digest": state.recorded.subject_digest,
        "rejected_by": state.rejected_by.as_deref().map(|k| name_of(sets, k)),
        "reject_reason": state.reject_reason,
        "first_seq": state.first_seq,
        "last_seq": state.last_seq,
    });
    if state.recorded.terms.kind == ProposalKind::Roll && status.is_committed() {
        object["execution"] = json!(execution_label(status, state.filled_contracts));
        object["filled_contracts"] = json!(state.filled_contracts);
        object["executions"] = json!(state.executions);
        object["execution_breaches"] = json!(state.execution_breaches);
    }
    match history.motion(state) {
        Some(Ok(view)) => motion_json(&view, &mut object),
        Some(Err(reason)) => object["changes_error"] = Value::String(reason),
        None => {}
    }
    if with_report {
        object["report"] = report
            .map(|r| serde_json::to_value(r).expect("reports serialize"))
            .unwrap_or(Value::Null);
    }
    object
}

/// The signatures `state` needs (its bound set's threshold) and, while it is pending, the
/// signers who may still sign it.
fn threshold_and_missing(
    governance: &Governance,
    history: &History,
    state: &ProposalState,
    status: Status,
) -> (u32, Vec<String>) {
    let threshold = history
        .bound_set(state)
        .map(|set| set.threshold)
        .unwrap_or(governance.set.threshold);
    let missing = if status == Status::Pending {
        tally(governance, state)
            .map(|t| t.missing)
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    (threshold, missing)
}

/// What a signer needs before signing, as `show` prints it and `sign` shows it before it
/// signs (one layout for both): the roll (closed layer, next layer, window, snapshot, note) or
/// what a motion changes, every guardrail check as `evaluate` prints it, the signatures with
/// their key ids and times, who may still sign, the expiry (or why and when it closed), the
/// digest the signatures cover. Lines are not escaped: the caller prints them through `shown`.
pub fn signing_view(
    governance: &Governance,
    history: &History,
    state: &ProposalState,
    now: DateTime<Utc>,
) -> Vec<String> {
    let sets = &history.sets;
    let terms = &state.recorded.terms;
    let status = state.status_under(now, governance);
    let (threshold, missing) = threshold_and_missing(governance, history, state, status);
    let mut lines = vec![
        format!(
            "proposal {} (short id {})  {}  [{}]",
            state.id,
            short_id(&state.id),
            terms.kind.as_str(),
            status
        ),
        format!(
            "  proposed by {} ({}) at {}; recorded at seq {}",
            name_of(sets, state.proposer()),
            state.proposer(),
            terms.created_at,
            state.first_seq
        ),
    ];
    match terms.kind {
        ProposalKind::Roll => lines.extend(roll_lines(&terms.body)),
        _ => {
            lines.push(format!("  {}", summary(state)));
            lines.extend(
                history
                    .motion_lines(state)
                    .into_iter()
                    .map(|line| format!("    {line}")),
            );
        }
    }
    if let Some(report) = report_of(state) {
        lines.extend(guardrail_lines(terms.policy_version, &report));
    }
    lines.push(format!(
        "  signatures: {} of {} needed",
        state.cosignatures.len(),
        threshold
    ));
    for signature in &state.cosignatures {
        lines.push(format!(
            "    {} ({}) at {}",
            name_of(sets, &signature.key_id),
            signature.key_id,
            signature.recorded_at
        ));
    }
    if !missing.is_empty() {
        lines.push(format!("  may still sign: {}", missing.join(", ")));
    }
    lines.push(life_line(governance, history, state, status, now));
    if terms.kind == ProposalKind::Roll && status.is_committed() {
        let label = execution_label(status, state.filled_contracts);
        lines.push(format!(
            "  execution: {label}, {} of {} contracts filled in {} execution(s){}",
            state.filled_contracts,
            terms.contracts_requested.unwrap_or_default(),
            state.executions,
            match state.execution_breaches {
                0 => String::new(),
                n => format!("; {n} recorded an execution breach"),
            }
        ));
    }
    lines.push(format!(
        "  subject digest {}",
        state.recorded.subject_digest
    ));
    lines
}

/// A recorded report as its signers weigh it: every guardrail check with its figures against
/// its limit (never the report's stored message words), the policy's hash on the last line.
pub fn guardrail_lines(policy_version: u64, report: &SizingReport) -> Vec<String> {
    let mut lines = vec![format!("  guardrails (policy v{policy_version}):")];
    lines.extend(
        crate::sizing::render::human_of_stored(report)
            .lines()
            .map(|line| format!("    {line}").trim_end().to_string()),
    );
    lines
}

/// A roll's terms as its signers weigh them, read from the body the digest covers.
pub fn roll_lines(body: &str) -> Vec<String> {
    let Ok(roll) = Proposal::from_toml_str(body) else {
        return vec!["  roll (unreadable body)".into()];
    };
    let (closed, next) = (&roll.closed_layer, &roll.next_layer);
    let mut lines = vec![
        format!(
            "  closed layer {}: {} contracts, entry {} USD, exit {} USD, fees {} USD",
            closed.id.as_deref().unwrap_or("(no id)"),
            closed.contracts,
            crate::sizing::render::usd(closed.entry_premium_usd),
            crate::sizing::render::usd(closed.exit_premium_usd),
            crate::sizing::render::usd(closed.fees_usd)
        ),
        format!(
            "  next layer: {} x VIX {} call exp {}, premium {} USD (x{}), outlay {} USD",
            next.contracts,
            next.strike,
            next.expiry,
            crate::sizing::render::usd(next.premium_usd),
            next.multiplier,
            crate::sizing::render::usd(roll.requested_outlay_usd())
        ),
        format!(
            "  window {} .. {}; market snapshot at {}",
            roll.roll
                .execute_after
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            roll.roll
                .execute_before
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            roll.roll
                .as_of
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        ),
    ];
    if !roll.roll.note.is_empty() {
        lines.push(format!("  note: {}", roll.roll.note));
    }
    lines
}

/// The proposal's life: when a pending one expires, or why and when a closed one closed (no
/// expiry line once closed: it no longer matters).
fn life_line(
    governance: &Governance,
    history: &History,
    state: &ProposalState,
    status: Status,
    now: DateTime<Utc>,
) -> String {
    let terms = &state.recorded.terms;
    let closed_at = state.closed_at.as_deref().unwrap_or("?");
    match status {
        Status::Pending => {
            let left = state.expires_at - now;
            format!(
                "  expires {} (in {} h {} min)",
                terms.expires_at,
                left.num_hours(),
                left.num_minutes() % 60
            )
        }
        Status::Expired if state.status == Status::Pending && now <= state.expires_at => {
            format!(
                "  closed: expired when signer set v{} / policy v{} replaced the ones it is bound to (v{} / v{})",
                governance.set.version,
                governance.policy_version,
                terms.signer_set_version,
                terms.policy_version
            )
        }
        Status::Expired if state.closed_at.is_none() => {
            format!("  closed: expired at {} unsigned", terms.expires_at)
        }
        Status::Expired => format!("  closed: expired at {closed_at}"),
        Status::Rejected => format!(
            "  closed: vetoed by {} at {closed_at}: {}",
            state
                .rejected_by
                .as_deref()
                .map_or_else(|| "?".to_string(), |k| name_of(&history.sets, k)),
            state.reject_reason.as_deref().unwrap_or("")
        ),
        Status::Withdrawn => format!("  closed: withdrawn by its proposer at {closed_at}"),
        Status::Failed => {
            "  closed: recorded as failed (verdict fail); it can never be signed".into()
        }
        _ => format!("  closed: committed at {closed_at}"),
    }
}

/// The human view of `show`: the signing view, every line through `shown`.
pub fn proposal_text(
    governance: &Governance,
    history: &History,
    state: &ProposalState,
    now: DateTime<Utc>,
) -> String {
    let mut out = String::new();
    for line in signing_view(governance, history, state, now) {
        out.push_str(&shown(&line));
        out.push('\n');
    }
    out
}

/// What a committed roll's execution amounts to, in words: `not executed`, `partially
/// executed`, `executed`, or `execution breach`.
pub fn execution_label(status: Status, filled_contracts: u64) -> &'static str {
    match status {
        Status::ExecutionBreach => "execution breach",
        Status::Executed => "executed",
        _ if filled_contracts > 0 => "partially executed",
        _ => "not executed",
    }
}

/// The lines of `show` listing a roll's executions, oldest first: each with its seq, event id,
/// fills, the executions it corrects, and its breaches.
pub fn execution_lines(
    executions: &[(u64, String, String, RollExecuted)],
    sets: &[ActiveSet],
) -> Vec<String> {
    let mut lines = Vec::new();
    for (seq, event_id, at, executed) in executions {
        lines.push(format!(
            "  execution at seq {seq} ({event_id}), recorded {at} by {}{}:",
            name_of(sets, &executed.signature.key_id),
            if executed.corrects.is_empty() {
                String::new()
            } else {
                format!(", correcting {}", executed.corrects.join(", "))
            }
        ));
        for fill in &executed.fills {
            lines.push(format!(
                "    {} contracts at {} USD, {} ({})",
                fill.contracts, fill.price_usd, fill.at, fill.broker_ref
            ));
        }
        for breach in &executed.breaches {
            lines.push(format!("    execution breach: {breach}"));
        }
    }
    lines
}

/// The JSON of a roll's executions (`show --json`, key `execution_events`).
pub fn execution_json(executions: &[(u64, String, String, RollExecuted)]) -> Value {
    Value::Array(
        executions
            .iter()
            .map(|(seq, event_id, at, executed)| {
                json!({
                    "seq": seq,
                    "event_id": event_id,
                    "recorded_at": at,
                    "key_id": executed.signature.key_id,
                    "fills": executed.fills,
                    "corrects": executed.corrects,
                    "filled_contracts": executed.filled_contracts,
                    "status": executed.status,
                    "breaches": executed.breaches,
                })
            })
            .collect(),
    )
}
