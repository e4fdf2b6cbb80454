//! The streaming auditor: replays a ledger event by event and checks everything an auditor
//! needs, with the same decide functions that wrote it, so the write rules and the audit rules
//! cannot drift apart. Pure: feed it events in seq order; it keeps the hash-chain head, the
//! Merkle frontier, the governance in force and the proposals still open (closed ones are
//! dropped), so memory does not grow with the ledger's length.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::crypto::merkle::MerkleBuilder;
use crate::crypto::to_hex;
use crate::domain::approval::{
    check_recorded_parsed, decide_reject_trusting, decide_sign_trusting, decide_withdraw_trusting,
    ParsedRoll, ProposalState, Status,
};
use crate::domain::envelope::{ChainVerifier, StoredEvent, PAYLOAD_BYTES_MAX};
use crate::domain::events::{Event, ProposalRecorded, SignatureEnvelope, LEDGER_STREAM};
use crate::domain::governance::{Governance, VerifiedSignatures};

/// The first failure: its seq and a plain reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("seq {seq}: {reason}")]
pub struct AuditFailure {
    pub seq: u64,
    pub reason: String,
}

/// What a valid ledger holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSummary {
    pub ledger_id: String,
    pub events: u64,
    pub head_hash: String,
    pub merkle_root: String,
    /// Proposals (rolls and motions) by status, statuses judged at the last event's time.
    pub proposals: BTreeMap<String, u64>,
    pub signatures: u64,
    pub signer_set_version: u64,
    pub signers: Vec<String>,
    pub threshold: u32,
    pub policy_version: u64,
    pub policy_hash: String,
}

/// Proposals whose expiry passed this long before the current event are dropped from memory:
/// nothing valid can refer to them any more (the grace covers writers' clock skew).
const EXPIRED_EVICTION_GRACE_HOURS: i64 = 24;

/// Serializable, so a client can save where it stopped and resume there (`snapshot`, `restore`;
/// `pin.rs`): the state is exactly what the next event's checks need.
#[derive(Serialize, Deserialize)]
pub struct Auditor {
    chain: ChainVerifier,
    merkle: MerkleBuilder,
    governance: Option<Governance>,
    open: HashMap<String, ProposalState>,
    /// Events the previous event made due, in order (a commit after the K-th signature, the
    /// adoption after a governance commit).
    due: VecDeque<Event>,
    /// After an adoption: pending proposals bound to the old governance may be expired.
    #[serde(with = "expiry_reason")]
    expiring: Option<(&'static str, u64)>,
    closed: BTreeMap<String, u64>,
    signatures: u64,
    last_time: Option<DateTime<Utc>>,
    ledger_id: Option<uuid::Uuid>,
}

impl Default for Auditor {
    fn default() -> Self {
        Self::new()
    }
}

/// An event with the work that depends on nothing before it already done: its hash, its
/// parsed payload and, for a roll, its parsed body and report. Made on any core (the export
/// pipeline makes them in parallel); consumed in seq order by `Auditor::push_prepared`.
pub struct Prepared {
    /// Private: the hash and the parsed values below belong to exactly this event.
    event: StoredEvent,
    computed_hash: [u8; 32],
    payload: Result<Event, String>,
    roll: Option<ParsedRoll>,
}

impl Prepared {
    pub fn new(event: StoredEvent) -> Prepared {
        let computed_hash = event.computed_hash();
        // An oversized payload is refused by the chain check before anything reads it; not
        // parsing it here keeps a worker's memory bounded by the payload limit.
        let payload = if event.payload.len() > PAYLOAD_BYTES_MAX {
            Err(format!(
                "the payload is larger than {PAYLOAD_BYTES_MAX} bytes"
            ))
        } else {
            Event::from_payload(&event.event_type, event.schema_version, &event.payload)
                .map_err(|error| error.to_string())
        };
        let roll = match &payload {
            Ok(Event::ProposalRecorded(recorded)) => ParsedRoll::parse(recorded),
            _ => None,
        };
        Prepared {
            event,
            computed_hash,
            payload,
            roll,
        }
    }

    /// The event this was prepared from.
    pub fn event(&self) -> &StoredEvent {
        &self.event
    }

    /// The parsed payload, when it parsed.
    pub fn payload(&self) -> Option<&Event> {
        self.payload.as_ref().ok()
    }
}

impl Auditor {
    pub fn new() -> Self {
        Auditor {
            chain: ChainVerifier::new(),
            merkle: MerkleBuilder::new(),
            governance: None,
            open: HashMap::new(),
            due: VecDeque::new(),
            expiring: None,
            closed: BTreeMap::new(),
            signatures: 0,
            last_time: None,
            ledger_id: None,
        }
    }

    pub fn events(&self) -> u64 {
        self.chain.events_verified()
    }

    /// The state as bytes (JSON), to resume from with `restore`.
    pub fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("the auditor's state is plain data and serializes")
    }

    /// An auditor resumed from a `snapshot`.
    pub fn restore(bytes: &[u8]) -> Result<Auditor, String> {
        serde_json::from_slice(bytes).map_err(|error| error.to_string())
    }

    pub fn merkle_root(&self) -> [u8; 32] {
        self.merkle.root()
    }

    pub fn head_hash(&self) -> [u8; 32] {
        self.chain.head_hash()
    }

    /// Checks the next event, every signature strictly.
    pub fn push(&mut self, event: &StoredEvent) -> Result<(), AuditFailure> {
        self.push_prepared(Prepared::new(event.clone()), &VerifiedSignatures::default())
    }

    /// `push` of an event whose independent work was done ahead (`Prepared::new`), its
    /// signature not checked again when `verified` holds it (the pipeline's workers checked it).
    pub fn push_prepared(
        &mut self,
        prepared: Prepared,
        verified: &VerifiedSignatures,
    ) -> Result<(), AuditFailure> {
        let Prepared {
            event,
            computed_hash,
            payload,
            roll,
        } = prepared;
        let event = &event;
        let fail = |reason: String| AuditFailure {
            seq: event.seq,
            reason,
        };
        self.chain
            .push_hashed(event, computed_hash)
            .map_err(|error| {
                let text = error.to_string();
                // ChainError already names the seq; keep the reason only.
                let reason = text
                    .split_once(": ")
                    .map(|(_, r)| r.to_string())
                    .unwrap_or(text);
                fail(reason)
            })?;
        self.merkle.push_leaf_data(&event.hash);
        let at = event
            .recorded_at_utc()
            .expect("the chain verifier checked the timestamp");
        self.last_time = Some(at);
        self.ledger_id = Some(event.ledger_id);
        let payload = payload.map_err(fail)?;
        if payload.event_type() != event.event_type {
            return Err(fail(format!(
                "event type {} does not match its payload",
                event.event_type
            )));
        }
        if payload.stream_id() != event.stream_id {
            return Err(fail(format!(
                "stream {} does not match the payload's {}",
                event.stream_id,
                payload.stream_id()
            )));
        }
        self.apply(event, payload, roll, at, verified).map_err(fail)
    }

    fn apply(
        &mut self,
        event: &StoredEvent,
        payload: Event,
        roll: Option<ParsedRoll>,
        at: DateTime<Utc>,
        verified: &VerifiedSignatures,
    ) -> Result<(), String> {
        // An event made due by the previous one must come now, exactly as decided.
        if let Some(expected) = self.due.pop_front() {
            if payload != expected {
                return Err(format!(
                    "expected {} (decided by the previous event in the same transaction), found {}",
                    expected.event_type(),
                    payload.event_type()
                ));
            }
        } else if matches!(
            payload,
            Event::ProposalCommitted(_) | Event::SignerSetAdopted(_) | Event::PolicyAdopted(_)
        ) {
            return Err(format!(
                "{} without the K valid signatures that decide it",
                payload.event_type()
            ));
        }
        if !matches!(
            payload,
            Event::ProposalExpired(_) | Event::SignerSetAdopted(_) | Event::PolicyAdopted(_)
        ) {
            self.expiring = None;
        }
        let Some(mut governance) = self.governance.take() else {
            let Event::LedgerCreated(genesis) = &payload else {
                return Err("the ledger does not start with ledger.created".into());
            };
            if event.stream_version != 1 || event.stream_id != LEDGER_STREAM {
                return Err("the genesis must be version 1 of the ledger stream".into());
            }
            if event.actor.as_deref() != Some(&genesis.signature.key_id) {
                return Err("the genesis actor is not its signer".into());
            }
            self.governance = Some(
                Governance::genesis(event.ledger_id, genesis)
                    .map_err(|r| format!("genesis: {r}"))?,
            );
            return Ok(());
        };
        // Taken out for the match (so the open proposals can be borrowed) and put back after;
        // on a failure the walk ends anyway.
        let result = self.apply_governed(&mut governance, event, payload, roll, at, verified);
        self.governance = Some(governance);
        result?;
        self.evict(at);
        Ok(())
    }

    fn apply_governed(
        &mut self,
        governance: &mut Governance,
        event: &StoredEvent,
        payload: Event,
        roll: Option<ParsedRoll>,
        at: DateTime<Utc>,
        verified: &VerifiedSignatures,
    ) -> Result<(), String> {
        // A recording moves into the proposal's state (its body and report are most of an
        // export's bytes; no copy).
        let payload = match payload {
            Event::ProposalRecorded(recorded) => {
                return self.record(governance, event, recorded, roll, at, verified);
            }
            other => other,
        };
        match &payload {
            Event::LedgerCreated(_) => return Err("a second ledger.created".into()),
            Event::SignerSetAdopted(_) | Event::PolicyAdopted(_) => {
                if event.stream_version != governance.stream_version + 1 {
                    return Err(format!(
                        "ledger stream version {}, expected {}",
                        event.stream_version,
                        governance.stream_version + 1
                    ));
                }
                let old_set = governance.set.version;
                let old_policy = governance.policy_version;
                governance.apply(&payload).map_err(|r| r.to_string())?;
                self.expiring = Some(match payload {
                    Event::SignerSetAdopted(_) => ("signer_set_changed", old_set),
                    _ => ("policy_changed", old_policy),
                });
            }
            Event::ProposalRecorded(_) => unreachable!("handled by `record` above"),
            Event::ProposalSigned(signed) => {
                let state = self.open_state_signed_by_actor(
                    &signed.proposal_id,
                    &signed.signature,
                    event,
                    "the actor is not the signer",
                )?;
                let outcome = decide_sign_trusting(
                    governance,
                    state,
                    signed.signature.clone(),
                    at,
                    &[],
                    verified,
                )
                .map_err(|r| format!("signature of proposal {}: {r}", signed.proposal_id))?;
                // What the writer had to append after this signature, in the same transaction.
                self.due.extend(outcome.events.into_iter().skip(1));
                self.signatures += 1;
                self.evolve(&payload, event);
            }
            Event::ProposalCommitted(committed) => {
                self.check_version(&committed.proposal_id, event)?;
                self.evolve(&payload, event);
            }
            Event::ProposalRejected(rejected) => {
                let state = self.open_state_signed_by_actor(
                    &rejected.proposal_id,
                    &rejected.signature,
                    event,
                    "the actor is not the signer of the veto",
                )?;
                let expected = decide_reject_trusting(
                    governance,
                    state,
                    rejected.signature.clone(),
                    &rejected.reason,
                    at,
                    verified,
                )
                .map_err(|r| format!("veto of proposal {}: {r}", rejected.proposal_id))?;
                if expected != payload {
                    return Err("the veto differs from what its signature decides".into());
                }
                self.evolve(&payload, event);
            }
            Event::ProposalWithdrawn(withdrawn) => {
                let state = self.open_state_signed_by_actor(
                    &withdrawn.proposal_id,
                    &withdrawn.signature,
                    event,
                    "the actor is not the signer of the withdrawal",
                )?;
                decide_withdraw_trusting(
                    governance,
                    state,
                    withdrawn.signature.clone(),
                    at,
                    verified,
                )
                .map_err(|r| format!("withdrawal of proposal {}: {r}", withdrawn.proposal_id))?;
                self.evolve(&payload, event);
            }
            Event::ProposalExpired(expired) => {
                let Some((reason, old_version)) = self.expiring else {
                    return Err("proposal.expired outside a governance change".into());
                };
                self.check_version(&expired.proposal_id, event)?;
                let state = &self.open[&expired.proposal_id];
                let bound = if reason == "signer_set_changed" {
                    state.recorded.terms.signer_set_version
                } else {
                    state.recorded.terms.policy_version
                };
                if expired.reason != reason
                    || bound != old_version
                    || state.effective_status(at) != Status::Pending
                {
                    return Err(format!(
                        "proposal {} cannot expire for {:?} here",
                        expired.proposal_id, expired.reason
                    ));
                }
                self.evolve(&payload, event);
            }
        }
        Ok(())
    }

    /// `proposal.recorded`: a new proposal, checked as `propose` checked it, then opened.
    fn record(
        &mut self,
        governance: &Governance,
        event: &StoredEvent,
        recorded: ProposalRecorded,
        roll: Option<ParsedRoll>,
        at: DateTime<Utc>,
        verified: &VerifiedSignatures,
    ) -> Result<(), String> {
        if event.stream_version != 1 {
            return Err(format!(
                "proposal.recorded at stream version {}, expected 1",
                event.stream_version
            ));
        }
        if self.open.contains_key(&recorded.terms.proposal_id) {
            return Err(format!(
                "proposal {} recorded twice",
                recorded.terms.proposal_id
            ));
        }
        if event.actor.as_deref() != Some(&recorded.signature.key_id) {
            return Err("the actor is not the proposer who signed".into());
        }
        check_recorded_parsed(governance, &recorded, roll, verified)
            .map_err(|r| format!("proposal {}: {r}", recorded.terms.proposal_id))?;
        let state = ProposalState::from_recorded(recorded, event).map_err(|r| r.to_string())?;
        if state.created_at > at {
            return Err(format!(
                "proposal {} was created after it was recorded",
                state.recorded.terms.proposal_id
            ));
        }
        if state.status == Status::Failed {
            *self.closed.entry("failed".into()).or_default() += 1;
        } else {
            self.open
                .insert(state.recorded.terms.proposal_id.clone(), state);
        }
        Ok(())
    }

    /// The open proposal a signed event (co-signature, veto, withdrawal) acts on, once the
    /// event is its stream's next version and its actor is the key that signed it.
    fn open_state_signed_by_actor(
        &self,
        proposal_id: &str,
        signature: &SignatureEnvelope,
        event: &StoredEvent,
        actor_mismatch: &str,
    ) -> Result<&ProposalState, String> {
        self.check_version(proposal_id, event)?;
        if event.actor.as_deref() != Some(&signature.key_id) {
            return Err(actor_mismatch.into());
        }
        Ok(&self.open[proposal_id])
    }

    fn check_version(&self, proposal_id: &str, event: &StoredEvent) -> Result<(), String> {
        let state = self.open.get(proposal_id).ok_or_else(|| {
            format!("event for proposal {proposal_id}, which is unknown or already closed")
        })?;
        if event.stream_version != state.stream_version + 1 {
            return Err(format!(
                "stream version {}, expected {}",
                event.stream_version,
                state.stream_version + 1
            ));
        }
        Ok(())
    }

    fn evolve(&mut self, payload: &Event, event: &StoredEvent) {
        let id = payload.stream_id().to_string();
        if let Some(state) = self.open.get_mut(&id) {
            state.evolve(payload, event);
            if state.status != Status::Pending {
                *self.closed.entry(state.status.as_str().into()).or_default() += 1;
                self.open.remove(&id);
            }
        }
    }

    fn evict(&mut self, at: DateTime<Utc>) {
        // Bounded work: only when the map is large does a sweep pay for itself.
        if self.open.len() < 4096 || !self.due.is_empty() {
            return;
        }
        let cutoff = at - Duration::hours(EXPIRED_EVICTION_GRACE_HOURS);
        let before = self.open.len();
        self.open.retain(|_, state| state.expires_at >= cutoff);
        *self.closed.entry("expired".into()).or_default() += (before - self.open.len()) as u64;
    }

    /// Whether the history so far may end here: nothing its last event decided is still due.
    pub fn check_complete(&self) -> Result<(), AuditFailure> {
        match self.due.front() {
            Some(due) => Err(AuditFailure {
                seq: self.chain.events_verified(),
                reason: format!(
                    "the ledger ends before the {} its last signature decided",
                    due.event_type()
                ),
            }),
            None => Ok(()),
        }
    }

    /// Ends the walk: nothing may still be due, and the summary of what was verified.
    pub fn finish(self) -> Result<AuditSummary, AuditFailure> {
        self.check_complete()?;
        let last_seq = self.chain.events_verified();
        let governance = self.governance.ok_or(AuditFailure {
            seq: 0,
            reason: "the ledger is empty".into(),
        })?;
        let mut proposals = self.closed;
        let now = self.last_time.unwrap_or_default();
        for state in self.open.values() {
            *proposals
                .entry(state.effective_status(now).as_str().into())
                .or_default() += 1;
        }
        Ok(AuditSummary {
            ledger_id: self.ledger_id.map(|id| id.to_string()).unwrap_or_default(),
            events: last_seq,
            head_hash: to_hex(&self.chain.head_hash()),
            merkle_root: to_hex(&self.merkle.root()),
            proposals,
            signatures: self.signatures,
            signer_set_version: governance.set.version,
            signers: governance.set.names(),
            threshold: governance.set.threshold,
            policy_version: governance.policy_version,
            policy_hash: governance.policy_hash,
        })
    }
}

/// `expiring`'s reason is one of two static texts: saved as the text, restored as the same one.
mod expiry_reason {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    const REASONS: [&str; 2] = ["signer_set_changed", "policy_changed"];

    pub fn serialize<S: Serializer>(
        value: &Option<(&'static str, u64)>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<(&'static str, u64)>, D::Error> {
        let value: Option<(String, u64)> = Option::deserialize(deserializer)?;
        value
            .map(|(reason, version)| {
                REASONS
                    .into_iter()
                    .find(|known| *known == reason)
                    .map(|known| (known, version))
                    .ok_or_else(|| {
                        serde::de::Error::custom(format!("unknown expiry reason {reason:?}"))
                    })
            })
            .transpose()
    }
}
