//! One proposal as a reviewer reads it: a flat record of what its verified stream says (terms,
//! guardrail figures, signers with their times, veto, execution), built once and written by
//! both the CSV and the HTML report, so the two never disagree. Pure.

use chrono::{DateTime, NaiveDate, Utc};

use crate::cli::views::{execution_label, name_of, report_of, History};
use crate::domain::approval::{ProposalState, Status};
use crate::domain::envelope::parse_timestamp;
use crate::domain::events::ProposalKind;
use crate::domain::governance::Governance;
use crate::sizing::{Check, Proposal};

/// A recorded time: exact as the ledger holds it (RFC 3339, microseconds) and as an instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Instant {
    pub rfc3339: String,
    pub at: Option<DateTime<Utc>>,
}

impl Instant {
    pub fn new(rfc3339: &str) -> Instant {
        Instant {
            rfc3339: rfc3339.to_string(),
            at: parse_timestamp(rfc3339),
        }
    }

    /// `YYYY-MM-DD HH:MM:SS` (UTC, whole seconds): the form every spreadsheet reads as a
    /// date and time; empty when the recorded text is not a timestamp.
    pub fn utc_seconds(&self) -> String {
        self.at
            .map(|at| at.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default()
    }
}

/// A co-signature: who and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Signed {
    pub name: String,
    pub key_id: String,
    pub at: Instant,
}

/// What a roll asks for and what its guardrails allowed, from its body and recorded report.
#[derive(Debug, Clone, PartialEq)]
pub struct RollFigures {
    pub closed_layer_id: Option<String>,
    pub strike: f64,
    pub expiry: NaiveDate,
    pub premium_usd: f64,
    pub multiplier: u32,
    pub contracts_requested: u32,
    pub note: String,
    /// The next layer's outlay: contracts x premium x multiplier.
    pub outlay_usd: f64,
    /// From the recorded sizing report (absent when it cannot be read).
    pub contracts_max: Option<u32>,
    /// The outlay of the largest size the guardrails allowed (`contracts_max` contracts).
    pub outlay_max_usd: Option<f64>,
    /// What the draws left of the closed layer's budget when it was recorded.
    pub budget_left_usd: Option<f64>,
    pub checks: Vec<Check>,
}

impl RollFigures {
    fn of(state: &ProposalState) -> Option<RollFigures> {
        let proposal = Proposal::from_toml_str(&state.recorded.terms.body).ok()?;
        let layer = &proposal.next_layer;
        let unit_usd = layer.premium_usd * f64::from(layer.multiplier);
        let report = report_of(state);
        Some(RollFigures {
            closed_layer_id: proposal.closed_layer.id.clone(),
            strike: layer.strike,
            expiry: layer.expiry,
            premium_usd: layer.premium_usd,
            multiplier: layer.multiplier,
            contracts_requested: layer.contracts,
            note: proposal.roll.note.clone(),
            outlay_usd: f64::from(layer.contracts) * unit_usd,
            contracts_max: report.as_ref().map(|r| r.contracts_max),
            outlay_max_usd: report
                .as_ref()
                .map(|r| f64::from(r.contracts_max) * unit_usd),
            budget_left_usd: report.as_ref().map(|r| r.caps.budget_usd),
            checks: report.map(|r| r.checks).unwrap_or_default(),
        })
    }

    pub fn failed_checks(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|check| !check.passed)
    }
}

/// One proposal or motion, as of `now`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProposalRow {
    pub proposal_id: String,
    pub kind: ProposalKind,
    /// The status under the governance in force at `now` (a pending proposal past its expiry,
    /// or bound to a replaced set or policy, is `expired`).
    pub status: Status,
    /// A committed roll's execution in words (`not executed`, ..., `execution breach`).
    pub execution: Option<&'static str>,
    pub verdict: Option<String>,
    pub created: Instant,
    pub expires: Instant,
    /// When it reached its final status (commit, veto, withdrawal, recorded expiry).
    pub closed: Option<Instant>,
    pub proposer: String,
    pub signers: Vec<Signed>,
    /// K of the signer set it is bound to.
    pub threshold: Option<u32>,
    pub roll: Option<RollFigures>,
    /// What a motion changes against what it replaces, one line each (empty for a roll).
    pub changes: Vec<String>,
    pub vetoed_by: Option<String>,
    pub veto_reason: Option<String>,
    pub filled_contracts: u64,
    pub executions: u64,
    pub execution_breaches: u64,
    pub policy_version: u64,
    pub policy_hash: String,
    pub signer_set_version: u64,
    pub first_seq: u64,
    pub last_seq: u64,
}

impl ProposalRow {
    /// The row of `state`, names taken from every signer set in `history`, the status as of
    /// `now` under `governance` (the governance in force then; `None` when it could not be
    /// folded, and then only the time-to-live expires a pending proposal).
    pub fn new(
        state: &ProposalState,
        history: &History,
        governance: Option<&Governance>,
        now: DateTime<Utc>,
    ) -> ProposalRow {
        let sets = &history.sets;
        let terms = &state.recorded.terms;
        let status = match governance {
            Some(governance) => state.status_under(now, governance),
            None => state.effective_status(now),
        };
        let is_roll = terms.kind == ProposalKind::Roll;
        ProposalRow {
            proposal_id: state.id.to_string(),
            kind: terms.kind,
            status,
            execution: (is_roll && status.is_committed())
                .then(|| execution_label(status, state.filled_contracts)),
            verdict: terms.verdict.clone(),
            created: Instant::new(&terms.created_at),
            expires: Instant::new(&terms.expires_at),
            closed: state.closed_at.as_deref().map(Instant::new),
            proposer: name_of(sets, state.proposer()),
            signers: state
                .cosignatures
                .iter()
                .map(|c| Signed {
                    name: name_of(sets, &c.key_id),
                    key_id: c.key_id.clone(),
                    at: Instant::new(&c.recorded_at),
                })
                .collect(),
            threshold: history
                .set_version(terms.signer_set_version)
                .map(|set| set.threshold),
            roll: if is_roll {
                RollFigures::of(state)
            } else {
                None
            },
            changes: history
                .motion_lines(state)
                .iter()
                .map(|line| line.trim().to_string())
                .collect(),
            vetoed_by: state.rejected_by.as_deref().map(|k| name_of(sets, k)),
            veto_reason: state.reject_reason.clone(),
            filled_contracts: state.filled_contracts,
            executions: state.executions,
            execution_breaches: state.execution_breaches,
            policy_version: terms.policy_version,
            policy_hash: terms.policy_hash.clone(),
            signer_set_version: terms.signer_set_version,
            first_seq: state.first_seq,
            last_seq: state.last_seq,
        }
    }

    /// The time from its recording to its commit, for a committed proposal.
    pub fn seconds_to_commit(&self) -> Option<i64> {
        if !self.status.is_committed() {
            return None;
        }
        let (created, closed) = (self.created.at?, self.closed.as_ref()?.at?);
        Some((closed - created).num_seconds())
    }
}
