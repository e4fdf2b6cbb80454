//! A proposal: its terms as drafted and signed (`ProposalDraft`, the subject every signature
//! binds) and its state folded from its stream (`ProposalState::evolve`: state changes only, no
//! rules; the rules are in `approval`). Pure.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::envelope::{format_timestamp, parse_timestamp, StoredEvent};
use super::events::{Event, ProposalKind, ProposalRecorded, ProposalTerms};
use super::execution::BodyTerms;
use super::governance::{ActiveSet, Governance, Refusal};
use crate::crypto::canonical::{signed_message, subject_digest, ChainHead, Purpose, SubjectInput};
use crate::crypto::from_hex32;
use crate::sizing::{self, Policy, Proposal, SizingReport};

/// The longest time to live a policy may set (one year); `Policy::validate` enforces it.
pub const TTL_SECONDS_MAX: u64 = crate::sizing::PROPOSAL_TTL_SECONDS_MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Status {
    Pending,
    Committed,
    Failed,
    Rejected,
    Withdrawn,
    Expired,
    /// A committed roll whose recorded fills add up to the approved size, every one within the
    /// approved bounds.
    Executed,
    /// A committed roll with fills recorded outside the approved bounds (final: a correction is
    /// recorded under it, the breach stays named).
    ExecutionBreach,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Committed => "committed",
            Status::Failed => "failed",
            Status::Rejected => "rejected",
            Status::Withdrawn => "withdrawn",
            Status::Expired => "expired",
            Status::Executed => "executed",
            Status::ExecutionBreach => "execution_breach",
        }
    }

    /// Whether a roll in this status was committed: it may be executed, and it draws on its
    /// closed layer (an execution moves a committed roll to `Executed` or `ExecutionBreach`).
    pub fn is_committed(self) -> bool {
        matches!(
            self,
            Status::Committed | Status::Executed | Status::ExecutionBreach
        )
    }

    pub fn parse(text: &str) -> Option<Status> {
        [
            Status::Pending,
            Status::Committed,
            Status::Failed,
            Status::Rejected,
            Status::Withdrawn,
            Status::Expired,
            Status::Executed,
            Status::ExecutionBreach,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }

    /// What a user can do about a proposal in this status, for refusal messages.
    pub(crate) fn why_final(self) -> &'static str {
        match self {
            Status::Pending => "it is still pending",
            Status::Committed => "it is already committed",
            Status::Failed => "it failed its guardrails and can never be signed or committed; propose a resized roll",
            Status::Rejected => "it was vetoed",
            Status::Withdrawn => "its proposer withdrew it",
            Status::Expired => "it expired; propose it again",
            Status::Executed => "it is committed and executed",
            Status::ExecutionBreach => "it is committed and its execution breached the approved bounds",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A co-signature as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CoSignature {
    pub key_id: String,
    pub recorded_at: String,
    pub seq: u64,
}

/// The status a proposal stored as `stored` shows at `now`: a pending one is `Expired` past
/// `expires_at`, and, given the (signer set, policy) versions it is bound to and the governance
/// in force, when either was replaced (it can never be signed again). One rule for a folded
/// proposal and for a projection row (`list` judges rows before it reads their streams).
pub fn shown_status(
    stored: Status,
    expires_at: DateTime<Utc>,
    bound_under: Option<((u64, u64), &Governance)>,
    now: DateTime<Utc>,
) -> Status {
    if stored != Status::Pending {
        return stored;
    }
    let stale = bound_under.is_some_and(|((set_version, policy_version), governance)| {
        set_version != governance.set.version || policy_version != governance.policy_version
    });
    if now > expires_at || stale {
        Status::Expired
    } else {
        Status::Pending
    }
}

/// A proposal folded from its stream.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ProposalState {
    pub id: Uuid,
    pub recorded: ProposalRecorded,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub digest: [u8; 32],
    pub status: Status,
    pub cosignatures: Vec<CoSignature>,
    pub stream_version: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// When the proposal reached its final status (commit, veto, withdrawal, recorded expiry).
    pub closed_at: Option<String>,
    pub reject_reason: Option<String>,
    pub rejected_by: Option<String>,
    /// A committed roll's contracts filled, as its last execution counted them.
    #[serde(default)]
    pub filled_contracts: u64,
    /// A committed roll's executions recorded, and those of them that breached its bounds.
    #[serde(default)]
    pub executions: u64,
    #[serde(default)]
    pub execution_breaches: u64,
    /// A roll's body terms as its recording's check read them, for its commit
    /// (`ExecutableRoll::committed`); `None` in a state saved or folded elsewhere, which reads
    /// them from the body. Never saved: the body is the record.
    #[serde(skip)]
    pub body_terms: Option<BodyTerms>,
}

impl ProposalState {
    pub fn proposer(&self) -> &str {
        &self.recorded.signature.key_id
    }

    /// `Pending` turns into `Expired` once the clock passes `expires_at`, without an event.
    pub fn effective_status(&self, now: DateTime<Utc>) -> Status {
        shown_status(self.status, self.expires_at, None, now)
    }

    /// The status as users should see it: also `Expired` when the signer set or policy it is
    /// bound to is no longer in force (it can never be signed again).
    pub fn status_under(&self, now: DateTime<Utc>, governance: &Governance) -> Status {
        let terms = &self.recorded.terms;
        let bound = (terms.signer_set_version, terms.policy_version);
        shown_status(self.status, self.expires_at, Some((bound, governance)), now)
    }

    pub fn has_signed(&self, key_id: &str) -> bool {
        self.proposer() == key_id || self.cosignatures.iter().any(|c| c.key_id == key_id)
    }

    /// Starts a state from a `proposal.recorded` payload (structure only; signatures are checked
    /// by `decide_propose` before writing and by the verifier on replay).
    pub fn from_recorded(
        recorded: ProposalRecorded,
        event: &StoredEvent,
    ) -> Result<ProposalState, Refusal> {
        let terms = &recorded.terms;
        let id = parse_proposal_id(terms)?;
        let timestamp = |field: &'static str, text: &str| {
            parse_timestamp(text).ok_or_else(|| Refusal::RecordedTimestamp {
                field,
                text: text.into(),
            })
        };
        let created_at = timestamp("created_at", &terms.created_at)?;
        let expires_at = timestamp("expires_at", &terms.expires_at)?;
        let digest =
            from_hex32(&recorded.subject_digest).map_err(|_| Refusal::SubjectDigestNotHex)?;
        let status = if recorded.terms.verdict.as_deref() == Some("fail") {
            Status::Failed
        } else {
            Status::Pending
        };
        Ok(ProposalState {
            id,
            recorded,
            created_at,
            expires_at,
            digest,
            status,
            cosignatures: Vec::new(),
            stream_version: event.stream_version,
            first_seq: event.seq,
            last_seq: event.seq,
            closed_at: None,
            reject_reason: None,
            rejected_by: None,
            filled_contracts: 0,
            executions: 0,
            execution_breaches: 0,
            body_terms: None,
        })
    }

    /// Applies a later event of the stream (`evolve`: state changes only, no rules).
    pub fn evolve(&mut self, event: &Event, stored: &StoredEvent) {
        match event {
            Event::ProposalSigned(signed) => self.cosignatures.push(CoSignature {
                key_id: signed.signature.key_id.clone(),
                recorded_at: stored.recorded_at.clone(),
                seq: stored.seq,
            }),
            Event::ProposalCommitted(_) => self.close(Status::Committed, stored),
            Event::ProposalRejected(rejected) => {
                self.reject_reason = Some(rejected.reason.clone());
                self.rejected_by = Some(rejected.signature.key_id.clone());
                self.close(Status::Rejected, stored)
            }
            Event::ProposalWithdrawn(_) => self.close(Status::Withdrawn, stored),
            Event::ProposalExpired(_) => self.close(Status::Expired, stored),
            // Rules and amounts were decided by `decide_execute`; the fold takes its result.
            Event::RollExecuted(executed) => {
                if let Some(status) = Status::parse(&executed.status) {
                    self.status = status;
                }
                self.filled_contracts = executed.filled_contracts;
                self.executions += 1;
                self.execution_breaches += u64::from(!executed.breaches.is_empty());
            }
            _ => {}
        }
        self.stream_version = stored.stream_version;
        self.last_seq = stored.seq;
    }

    fn close(&mut self, status: Status, stored: &StoredEvent) {
        self.status = status;
        self.closed_at = Some(stored.recorded_at.clone());
    }

    /// Folds a whole stream, as read by index from the store.
    pub fn from_stream(events: &[StoredEvent]) -> Result<ProposalState, Refusal> {
        let mut iter = events.iter();
        let first = iter.next().ok_or(Refusal::NoSuchProposal)?;
        let Event::ProposalRecorded(recorded) = parse_event(first)? else {
            return Err(Refusal::ProposalStreamStart {
                stream_id: first.stream_id.clone(),
            });
        };
        let mut state = ProposalState::from_recorded(recorded, first)?;
        for event in iter {
            state.evolve(&parse_event(event)?, event);
        }
        Ok(state)
    }
}

/// A proposal before it is recorded: its terms in a ledger, for the proposer to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalDraft {
    pub ledger_id: Uuid,
    pub terms: ProposalTerms,
}

/// The signer set a motion's terms propose: `None` for a roll or a policy motion.
pub(crate) fn proposed_set_of(terms: &ProposalTerms) -> Result<Option<ActiveSet>, Refusal> {
    match terms.kind {
        ProposalKind::SignerSet => ActiveSet::parse(&terms.body).map(Some),
        _ => Ok(None),
    }
}

impl ProposalDraft {
    /// The signer set this draft proposes, when it is a signer-set motion.
    pub fn proposed_set(&self) -> Result<Option<ActiveSet>, Refusal> {
        proposed_set_of(&self.terms)
    }

    fn bound(
        governance: &Governance,
        proposal_id: Uuid,
        kind: ProposalKind,
        body: String,
        now: DateTime<Utc>,
    ) -> Self {
        // The policy bounds the TTL (at most a year), so this cannot overflow; saturate anyway.
        let ttl_seconds = governance
            .policy
            .approval
            .proposal_ttl_seconds
            .min(TTL_SECONDS_MAX);
        let expires_at = now
            .checked_add_signed(Duration::seconds(ttl_seconds as i64))
            .unwrap_or(now);
        ProposalDraft {
            ledger_id: governance.ledger_id,
            terms: ProposalTerms {
                proposal_id: proposal_id.to_string(),
                kind,
                body,
                report_json: None,
                verdict: None,
                contracts_requested: None,
                policy_version: governance.policy_version,
                policy_hash: governance.policy_hash.clone(),
                signer_set_version: governance.set.version,
                signer_set_hash: governance.set_hash.clone(),
                created_at: format_timestamp(now),
                expires_at: format_timestamp(expires_at),
            },
        }
    }

    /// A roll: evaluates `body` (the proposal TOML) under the policy in force at `now`.
    /// `draws`: what other proposals draw on its closed layer at `now` (`LayerBook::draws_for`).
    pub fn roll(
        governance: &Governance,
        proposal_id: Uuid,
        body: String,
        draws: &sizing::Draws,
        now: DateTime<Utc>,
    ) -> Result<(ProposalDraft, SizingReport), sizing::InputError> {
        let proposal = Proposal::from_toml_str(&body)?;
        let mut draft = Self::bound(governance, proposal_id, ProposalKind::Roll, body, now);
        // The report is evaluated at the recorded creation time, so an auditor can re-run it.
        let created_at = parse_timestamp(&draft.terms.created_at).expect("canonical");
        let report = sizing::evaluate(&proposal, &governance.policy, draws, created_at)?;
        let terms = &mut draft.terms;
        terms.report_json = Some(serde_json::to_string(&report).expect("reports serialize"));
        terms.verdict = Some(report.verdict.as_str().to_string());
        terms.contracts_requested = Some(report.contracts_requested);
        Ok((draft, report))
    }

    /// A governance motion proposing the complete next signer set.
    pub fn signer_set(
        governance: &Governance,
        proposal_id: Uuid,
        next: &ActiveSet,
        now: DateTime<Utc>,
    ) -> ProposalDraft {
        Self::bound(
            governance,
            proposal_id,
            ProposalKind::SignerSet,
            next.to_json(),
            now,
        )
    }

    /// A governance motion proposing the complete next policy.
    pub fn policy(
        governance: &Governance,
        proposal_id: Uuid,
        next: &Policy,
        now: DateTime<Utc>,
    ) -> ProposalDraft {
        Self::bound(
            governance,
            proposal_id,
            ProposalKind::Policy,
            next.canonical_json(),
            now,
        )
    }

    /// The proposal's id; a draft is made with a UUID.
    pub fn proposal_id(&self) -> Uuid {
        Uuid::parse_str(&self.terms.proposal_id).expect("a draft's proposal id is a UUID")
    }

    pub fn subject_digest(&self) -> [u8; 32] {
        subject_digest_of(&self.ledger_id, &self.proposal_id(), &self.terms)
    }

    /// The bytes the proposer signs to record it right after `head`.
    pub fn message(&self, head: &ChainHead) -> Vec<u8> {
        signed_message(
            Purpose::Propose,
            &self.ledger_id,
            &self.proposal_id(),
            self.terms.signer_set_version,
            &self.subject_digest(),
            head,
            None,
        )
    }
}

/// The subject digest of a proposal (docs/audit-format.md): what every signature on it binds.
/// The one mapping from a proposal's terms to the digested subject; `proposal_id` is
/// `terms.proposal_id` as the caller parsed it.
pub fn subject_digest_of(ledger_id: &Uuid, proposal_id: &Uuid, terms: &ProposalTerms) -> [u8; 32] {
    subject_digest(&SubjectInput {
        ledger_id,
        proposal_id,
        kind: terms.kind.as_str(),
        body: &terms.body,
        report_json: terms.report_json.as_deref(),
        policy_hash: &terms.policy_hash,
        policy_version: terms.policy_version,
        signer_set_version: terms.signer_set_version,
        signer_set_hash: &terms.signer_set_hash,
        created_at: &terms.created_at,
        expires_at: &terms.expires_at,
    })
}

/// The message a signer signs for `purpose` on a recorded proposal, binding `head` (the event
/// the signature's event follows, or for an offline signature the head when the request was
/// written); `reason`: vetoes only.
pub fn message_for(
    ledger_id: Uuid,
    state: &ProposalState,
    purpose: Purpose,
    head: &ChainHead,
    reason: Option<&str>,
) -> Vec<u8> {
    signed_message(
        purpose,
        &ledger_id,
        &state.id,
        state.recorded.terms.signer_set_version,
        &state.digest,
        head,
        reason,
    )
}

/// The purpose of a co-signature on this kind of proposal.
pub fn cosign_purpose(kind: ProposalKind) -> Purpose {
    match kind {
        ProposalKind::Roll => Purpose::Cosign,
        ProposalKind::SignerSet | ProposalKind::Policy => Purpose::Governance,
    }
}

pub(super) fn parse_event(event: &StoredEvent) -> Result<Event, Refusal> {
    Event::from_payload(&event.event_type, event.schema_version, &event.payload).map_err(|source| {
        Refusal::Payload {
            seq: event.seq,
            source,
        }
    })
}

pub(super) fn parse_proposal_id(terms: &ProposalTerms) -> Result<Uuid, Refusal> {
    let id = Uuid::parse_str(&terms.proposal_id).map_err(|_| Refusal::ProposalIdNotUuid {
        proposal_id: terms.proposal_id.clone(),
    })?;
    // `parse_str` also takes uppercase, simple, braced and URN spellings of the same 16 bytes.
    if id.hyphenated().to_string() != terms.proposal_id {
        return Err(Refusal::ProposalIdNotCanonical {
            proposal_id: terms.proposal_id.clone(),
        });
    }
    Ok(id)
}
