//! The application service: load what a decision needs from the store, call the pure domain,
//! append the decided events with optimistic concurrency, retry on a conflict. No printing; the
//! CLI and the tests share this path.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::crypto::canonical::{genesis_message, ChainHead, Purpose};
use crate::crypto::keys::KeyError;
use crate::crypto::Sign;
use crate::domain::approval::{
    self, cosign_purpose, decide_propose, decide_reject, decide_sign, decide_withdraw, message_for,
    ProposalDraft, ProposalState, SignOutcome, Status,
};
use crate::domain::chain::AtHead;
use crate::domain::clock::check_clocks;
use crate::domain::envelope::{
    format_timestamp, parse_timestamp, uuid_v7_at, uuid_v7_time, NewEvent, StoredEvent,
    ID_TIME_WINDOW_SECONDS,
};
use crate::domain::events::RollExecuted;
use crate::domain::events::{
    Event, LedgerCreated, SignatureEnvelope, LEDGER_FORMAT, LEDGER_STREAM, SCHEMA_VERSION,
};
use crate::domain::execution::{
    decide_execute, execute_message, validate_request, ExecutableRoll, ExecutionRequest,
    EXECUTION_RECORDING_GRACE_DAYS,
};
use crate::domain::governance::{envelope_of, ActiveSet, Governance, Refusal};
use crate::domain::layers::{LayerBook, LayerConflict};
use crate::pin::{PinError, Verified};
use crate::sizing::{Policy, Proposal, SizingReport};
use crate::store::{ChainNow, ExpectedVersion, Landing, Store, StoreError};

/// Attempts per command when another writer moved a stream first (each attempt re-reads).
pub const CONFLICT_RETRIES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pin(#[from] PinError),
    /// The key could not sign (an ssh-agent refused or went away); nothing was recorded.
    #[error(transparent)]
    Signing(#[from] KeyError),
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    NotFound(String),
    /// The stored ledger contradicts its own rules: run `rollbook verify`.
    #[error("the ledger is inconsistent: {0}; run `rollbook verify`")]
    Corrupt(String),
}

/// Signs `message` with `key` (a key file or an ssh-agent) into an envelope: every signature a
/// command makes for the ledger is made here.
pub fn seal_with(key: &impl Sign, message: Vec<u8>) -> Result<SignatureEnvelope, KeyError> {
    let signature = key.sign_message(&message)?;
    Ok(envelope_of(&key.public(), &message, &signature))
}

fn new_event(event: &Event, actor: Option<&str>) -> NewEvent {
    NewEvent {
        stream_id: event.stream_id().to_string(),
        event_type: event.event_type().to_string(),
        schema_version: SCHEMA_VERSION,
        actor: actor.map(str::to_string),
        payload: event.to_payload(),
    }
}

/// Creates a ledger: the genesis event with the signer set, the effective policy and the
/// creator's signature. Refused when the database already holds a ledger.
pub async fn init(
    store: &Store,
    set: &ActiveSet,
    policy: &Policy,
    creator: &impl Sign,
    local: DateTime<Utc>,
) -> Result<(Uuid, Governance), ServiceError> {
    if let Some(existing) = store.ledger_ids().await?.first() {
        return Err(Refusal::LedgerExists {
            ledger_id: *existing,
        }
        .into());
    }
    let now = store.clock(local).await?;
    check_clocks(local, now, None, policy.timing.clock_skew_max_seconds)?;
    set.check_enough_valid_at(now)?;
    let ledger_id = Uuid::now_v7();
    let set_json = set.to_json();
    let policy_json = policy.canonical_json();
    let policy_hash = policy.hash_hex();
    let signature = seal_with(
        creator,
        genesis_message(&ledger_id, &set_json, &policy_json, &policy_hash),
    )?;
    let genesis = LedgerCreated {
        format: LEDGER_FORMAT.to_string(),
        signer_set_json: set_json,
        policy_version: 1,
        policy_json,
        policy_hash,
        signature,
    };
    let governance = Governance::genesis(ledger_id, &genesis)?;
    governance.creator_valid_at(&genesis.signature.key_id, now)?;
    let actor = creator.public().key_id().to_string();
    let event = Event::LedgerCreated(genesis);
    store
        .append(
            ledger_id,
            true,
            &[(LEDGER_STREAM.to_string(), ExpectedVersion::NoStream)],
            vec![new_event(&event, Some(&actor))],
            now,
        )
        .await?;
    Ok((ledger_id, governance))
}

/// One ledger in one database.
pub struct Ledger {
    pub store: Store,
    pub ledger_id: Uuid,
    /// The governance last folded by `governance`, with the `ledger` stream it was folded from
    /// (`stream_mark`). A command asks for the governance more than once (what it
    /// shows, then each attempt of its decision), and every ask re-verified each adoption's
    /// motion, signatures included; the same stream folds to the same governance.
    governance_memo: std::sync::Mutex<Option<GovernanceMemo>>,
    /// Proposal streams this client's pin verified, by stream id (`stream_mark`,
    /// `remember_verified_stream`): a decision on one reads the stream again and, when it is
    /// still exactly that, skips re-verifying its recording and signatures.
    verified_streams: std::sync::Mutex<std::collections::HashMap<String, StreamMark>>,
}

/// A stream's events as their seqs and hashes: two reads with equal marks hold the same
/// events, since every row read is checked against its own hash (the store's seal check).
type StreamMark = Vec<(u64, [u8; 32])>;

fn stream_mark(events: &[StoredEvent]) -> StreamMark {
    events.iter().map(|event| (event.seq, event.hash)).collect()
}

struct GovernanceMemo {
    ledger_stream: StreamMark,
    governance: Governance,
}

impl Ledger {
    pub fn new(store: Store, ledger_id: Uuid) -> Ledger {
        Ledger {
            store,
            ledger_id,
            governance_memo: std::sync::Mutex::new(None),
            verified_streams: std::sync::Mutex::default(),
        }
    }

    pub async fn open(store: Store) -> Result<Ledger, ServiceError> {
        let ids = store.ledger_ids().await?;
        match ids.as_slice() {
            [] => Err(ServiceError::NotFound(
                "no ledger in this database: create one with `rollbook init --signers FILE --key KEY`".into(),
            )),
            [only] => Ok(Ledger::new(store, *only)),
            many => Err(ServiceError::Corrupt(format!("the database holds {} ledgers; rollbook expects one", many.len()))),
        }
    }

    /// The governance in force. Every adoption is trusted only after its motion's recording,
    /// signatures and commit re-verify under the governance before it.
    pub async fn governance(&self) -> Result<Governance, ServiceError> {
        let corrupt = |r: Refusal| ServiceError::Corrupt(r.to_string());
        let events = self
            .store
            .read_stream(self.ledger_id, LEDGER_STREAM)
            .await?;
        let (genesis, adoptions) = events
            .split_first()
            .ok_or_else(|| ServiceError::Corrupt("the ledger has no genesis".into()))?;
        if let Some(governance) = self.remembered_governance(&events) {
            return Ok(governance);
        }
        let mut governance =
            Governance::from_ledger_stream(self.ledger_id, std::slice::from_ref(genesis))
                .map_err(corrupt)?;
        for event in adoptions {
            let adoption =
                Event::from_payload(&event.event_type, event.schema_version, &event.payload)
                    .map_err(|e| ServiceError::Corrupt(format!("seq {}: {e}", event.seq)))?;
            let motion_id = match &adoption {
                Event::SignerSetAdopted(a) => &a.motion_id,
                Event::PolicyAdopted(a) => &a.motion_id,
                other => {
                    return Err(ServiceError::Corrupt(format!(
                        "seq {}: {} in the ledger stream",
                        event.seq,
                        other.event_type()
                    )))
                }
            };
            let motion = self.store.read_stream(self.ledger_id, motion_id).await?;
            approval::validate_motion(&governance, &motion, &adoption)
                .map_err(|r| ServiceError::Corrupt(format!("seq {}: {r}", event.seq)))?;
            governance.apply(&adoption).map_err(corrupt)?;
        }
        self.remember_governance(&events, &governance);
        Ok(governance)
    }

    /// Keeps `governance`, folded from a `ledger` stream that this client's pin verified
    /// (`pin::Verified::stream`: the auditor checked every adoption's motion), as `governance`
    /// keeps what it folds, so that a decision reading the same stream next does not verify
    /// the motions again.
    pub fn remember_verified_governance(&self, verified: &[StoredEvent], governance: &Governance) {
        self.remember_governance(verified, governance);
    }

    /// Notes that this client's pin verified the proposal stream `verified` (its recording with
    /// the report, every signature): `pin::Verified::proposal_and_stream`.
    pub fn remember_verified_stream(&self, verified: &[StoredEvent]) {
        if let Some(first) = verified.first() {
            self.verified_streams
                .lock()
                .expect("not poisoned")
                .insert(first.stream_id.clone(), stream_mark(verified));
        }
    }

    /// Whether `events` is exactly a proposal stream this client's pin verified.
    fn pin_verified(&self, events: &[StoredEvent]) -> bool {
        let Some(first) = events.first() else {
            return false;
        };
        self.verified_streams
            .lock()
            .expect("not poisoned")
            .get(&first.stream_id)
            .is_some_and(|verified| *verified == stream_mark(events))
    }

    /// The governance kept for exactly these `ledger` stream events.
    fn remembered_governance(&self, events: &[StoredEvent]) -> Option<Governance> {
        let memo = self.governance_memo.lock().expect("not poisoned");
        let memo = memo.as_ref()?;
        (memo.ledger_stream == stream_mark(events)).then(|| memo.governance.clone())
    }

    fn remember_governance(&self, events: &[StoredEvent], governance: &Governance) {
        *self.governance_memo.lock().expect("not poisoned") = Some(GovernanceMemo {
            ledger_stream: stream_mark(events),
            governance: governance.clone(),
        });
    }

    /// A proposal's state for a decision: a pending proposal bound to the governance in force
    /// has its whole stored history re-verified first, so forged rows cannot count.
    async fn proposal_for_decision(
        &self,
        governance: &Governance,
        proposal_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<ProposalState, ServiceError> {
        let events = self.stream(proposal_id).await?;
        let state = ProposalState::from_stream(&events)
            .map_err(|r| ServiceError::Corrupt(r.to_string()))?;
        // Pending and bound to the governance in force: the one it was verified under.
        if state.status_under(now, governance) != Status::Pending || self.pin_verified(&events) {
            return Ok(state);
        }
        approval::validate_history(governance, &events)
            .map_err(|r| ServiceError::Corrupt(r.to_string()))
    }

    /// Every signer set the ledger has had, oldest first (for names of past signers).
    pub async fn signer_sets(&self) -> Result<Vec<ActiveSet>, ServiceError> {
        let events = self
            .store
            .read_stream(self.ledger_id, LEDGER_STREAM)
            .await?;
        let mut sets = Vec::new();
        for event in &events {
            let payload =
                Event::from_payload(&event.event_type, event.schema_version, &event.payload)
                    .map_err(|e| ServiceError::Corrupt(e.to_string()))?;
            let json = match &payload {
                Event::LedgerCreated(genesis) => Some(&genesis.signer_set_json),
                Event::SignerSetAdopted(adopted) => Some(&adopted.signer_set_json),
                _ => None,
            };
            if let Some(json) = json {
                sets.push(
                    ActiveSet::parse(json).map_err(|r| ServiceError::Corrupt(r.to_string()))?,
                );
            }
        }
        Ok(sets)
    }

    pub async fn stream(&self, proposal_id: Uuid) -> Result<Vec<StoredEvent>, ServiceError> {
        let events = self
            .store
            .read_stream(self.ledger_id, &proposal_id.to_string())
            .await?;
        if events.is_empty() {
            return Err(ServiceError::NotFound(format!(
                "no proposal {proposal_id} in ledger {}; `rollbook list` shows them",
                self.ledger_id
            )));
        }
        Ok(events)
    }

    pub async fn proposal(&self, proposal_id: Uuid) -> Result<ProposalState, ServiceError> {
        let events = self.stream(proposal_id).await?;
        ProposalState::from_stream(&events).map_err(|r| ServiceError::Corrupt(r.to_string()))
    }

    async fn append(
        &self,
        expected: Vec<(String, ExpectedVersion)>,
        events: &[Event],
        actor: &str,
        now: DateTime<Utc>,
        landing: Landing,
    ) -> Result<Vec<StoredEvent>, ServiceError> {
        let new: Vec<NewEvent> = events
            .iter()
            .map(|event| new_event(event, Some(actor)))
            .collect();
        Ok(self
            .store
            .append_before(self.ledger_id, false, &expected, new, now, landing)
            .await?)
    }

    /// The ledger's head: what an online signature binds (its event must land right after it).
    pub async fn head(&self) -> Result<ChainHead, ServiceError> {
        let (seq, hash) = self
            .store
            .head(self.ledger_id)
            .await?
            .ok_or(StoreError::NoSuchLedger(self.ledger_id))?;
        Ok(ChainHead { seq, hash })
    }

    /// The ledger's head and clock for a command whose own clock reads `local`, with the
    /// governance in force: refused, before anything is signed, when the two clocks disagree
    /// by more than the policy's `timing.clock_skew_max_seconds` (`check_clocks`). The
    /// command then decides (expiry, staleness, `created_at`) and appends on the ledger's clock.
    async fn on_ledger_clock(
        &self,
        local: DateTime<Utc>,
    ) -> Result<(ChainNow, Governance), ServiceError> {
        let chain_now = self.store.chain_now(self.ledger_id, local).await?;
        let governance = self.governance().await?;
        check_clocks(
            local,
            chain_now.clock,
            Some(chain_now.head_time),
            governance.policy.timing.clock_skew_max_seconds,
        )?;
        Ok((chain_now, governance))
    }

    /// The chain as a decision sees it: the head, and the earlier point an offline signature
    /// binds (`bound`, when it lies before the head), read from the store.
    async fn chain_for(
        &self,
        head: ChainHead,
        bound: Option<ChainHead>,
    ) -> Result<AtHead, ServiceError> {
        let earlier = match bound.filter(|bound| bound.seq >= 1 && bound.seq < head.seq) {
            Some(bound) => self
                .store
                .read_page(self.ledger_id, bound.seq - 1, 1)
                .await?
                .first()
                .filter(|event| event.seq == bound.seq)
                .map(|event| ChainHead {
                    seq: event.seq,
                    hash: event.hash,
                }),
            None => None,
        };
        Ok(AtHead { head, earlier })
    }

    /// Records a roll: evaluated under the policy in force on the ledger's clock, read just
    /// before (its `created_at`), with what the history draws on its closed layer, signed by
    /// the proposer. A `fail` verdict is recorded too, with status `failed`. `local` is this
    /// machine's clock. The draws are folded by the auditor from genesis; a client with a pin
    /// uses `propose_roll_pinned`.
    pub async fn propose_roll(
        &self,
        body: String,
        key: &impl Sign,
        local: DateTime<Utc>,
    ) -> Result<(ProposalState, SizingReport), ServiceError> {
        self.propose_roll_from(body, key, local, LayerSource::Genesis)
            .await
    }

    /// `propose_roll` with the draws this client's pin verified (synced to the head first).
    pub async fn propose_roll_pinned(
        &self,
        body: String,
        key: &impl Sign,
        local: DateTime<Utc>,
        pin: &mut Verified,
    ) -> Result<(ProposalState, SizingReport), ServiceError> {
        self.propose_roll_from(body, key, local, LayerSource::Pinned(pin))
            .await
    }

    async fn propose_roll_from(
        &self,
        body: String,
        key: &impl Sign,
        local: DateTime<Utc>,
        mut source: LayerSource<'_>,
    ) -> Result<(ProposalState, SizingReport), ServiceError> {
        let (chain_now, governance) = self.on_ledger_clock(local).await?;
        let now = chain_now.clock;
        let proposal = Proposal::from_toml_str(&body)
            .map_err(|error| ServiceError::BadInput(error.to_string()))?;
        let proposal_id = uuid_v7_at(now);
        // The time the draft records (canonical, to the millisecond): the draws are those at it.
        let created_at = parse_timestamp(&format_timestamp(now)).expect("canonical");
        // Drafted again on every attempt: another event landing first may change the draws.
        let (state, drafted) = self
            .record(&governance, proposal_id, key, now, async || {
                let (head, layers) = self.layers_at_head(&mut source, &proposal).await?;
                let draws = layers
                    .draws_for(&proposal, &body, &governance, created_at)
                    .map_err(layer_conflict)?;
                let (draft, report) =
                    ProposalDraft::roll(&governance, proposal_id, body.clone(), &draws, now)
                        .map_err(|error| ServiceError::BadInput(error.to_string()))?;
                Ok(Drafted {
                    draft,
                    report: Some(report),
                    head,
                    layers,
                })
            })
            .await?;
        Ok((
            state,
            drafted.report.expect("a roll is drafted with its report"),
        ))
    }

    /// The closed layers drawn on at the head, and that head.
    async fn layers_at_head(
        &self,
        source: &mut LayerSource<'_>,
        proposal: &Proposal,
    ) -> Result<(ChainHead, LayerBook), ServiceError> {
        match source {
            LayerSource::Pinned(pin) => Ok(pin.layers(&self.store, proposal).await?),
            LayerSource::Genesis => crate::audit::layers_live(&self.store, self.ledger_id)
                .await
                .map_err(|error| ServiceError::Corrupt(error.to_string())),
        }
    }

    /// Records a governance motion (next signer set or next policy).
    pub async fn propose_motion(
        &self,
        make: impl Fn(&Governance, DateTime<Utc>) -> Result<ProposalDraft, ServiceError>,
        key: &impl Sign,
        local: DateTime<Utc>,
    ) -> Result<ProposalState, ServiceError> {
        let (chain_now, governance) = self.on_ledger_clock(local).await?;
        // One ledger clock reading per command: the draft's created_at is the time it is
        // appended with (or the head's, if later).
        let now = chain_now.clock;
        let draft = make(&governance, now)?;
        // A writer's rule, not a verifier's: a signer set with fewer than K keys valid on the
        // ledger's clock could decide nothing, so it is refused before anyone signs it.
        if let Some(next) = draft.proposed_set()? {
            next.check_enough_valid_at(now)?;
        }
        let (state, _) = self
            .record(&governance, draft.proposal_id(), key, now, async || {
                Ok(Drafted {
                    draft: draft.clone(),
                    report: None,
                    head: self.head().await?,
                    // A motion draws on no layer.
                    layers: LayerBook::default(),
                })
            })
            .await?;
        Ok(state)
    }

    /// Drafts (on every attempt), signs on the head the draft was made at, and appends the
    /// recording right after that head; the state recorded and the draft it was made from.
    async fn record(
        &self,
        governance: &Governance,
        proposal_id: Uuid,
        key: &impl Sign,
        now: DateTime<Utc>,
        mut drafted: impl AsyncFnMut() -> Result<Drafted, ServiceError>,
    ) -> Result<(ProposalState, Drafted), ServiceError> {
        let written = retry_on_conflict(proposal_id, async || {
            let drafted = drafted().await?;
            let draft = &drafted.draft;
            // Bound to the governance read above: a concurrent adoption makes this a conflict.
            let expected = vec![
                (
                    LEDGER_STREAM.to_string(),
                    ExpectedVersion::Exact(governance.stream_version),
                ),
                (draft.terms.proposal_id.clone(), ExpectedVersion::NoStream),
            ];
            let skew_seconds = governance.policy.timing.clock_skew_max_seconds;
            let (deadline, bound) = recording_deadline(draft, now, skew_seconds);
            let proposer_lapses = governance
                .set
                .by_key(&key.public().as_bytes())
                .and_then(|member| member.valid_before);
            let (deadline, key_bound) = within_key_lifetime(deadline, proposer_lapses);
            // The proposer signs the head the draft was made at; when another event lands
            // first, the append is refused and the next attempt drafts again on the new head.
            let signature = seal_with(key, draft.message(&drafted.head))?;
            let actor = signature.key_id.clone();
            let event = decide_propose(
                governance,
                draft,
                signature,
                &mut AtHead::new(drafted.head),
                &drafted.layers,
            )?;
            let landing = Landing {
                deadline: Some(deadline),
                after_head: Some(drafted.head),
            };
            let written = self
                .append(expected, std::slice::from_ref(&event), &actor, now, landing)
                .await
                .map_err(|error| match error {
                    // Another adoption since the governance was read: not retried, refused.
                    ServiceError::Store(StoreError::Conflict { .. }) => {
                        ServiceError::Refused(Refusal::GovernanceChanged)
                    }
                    other => key_bound.refused(other, |other| {
                        recording_refused(other, bound, now, skew_seconds)
                    }),
                })?;
            Ok((written, drafted))
        })
        .await?;
        let (written, drafted) = written;
        let state = ProposalState::from_stream(&written)
            .map_err(|r| ServiceError::Corrupt(r.to_string()))?;
        Ok((state, drafted))
    }

    /// Co-signs with a key held here.
    pub async fn sign(
        &self,
        proposal_id: Uuid,
        key: &impl Sign,
        local: DateTime<Utc>,
    ) -> Result<SignOutcome, ServiceError> {
        self.cosign_with(proposal_id, local, None, |state, head| {
            seal_with(
                key,
                message_for(
                    self.ledger_id,
                    state,
                    cosign_purpose(state.recorded.terms.kind),
                    head,
                    None,
                ),
            )
        })
        .await
    }

    /// Records a co-signature made elsewhere (offline signing), after the same checks. It binds
    /// the head its request was written at, which must be the chain's and no older than the
    /// proposal's recording.
    pub async fn attach(
        &self,
        proposal_id: Uuid,
        signature: SignatureEnvelope,
        local: DateTime<Utc>,
    ) -> Result<SignOutcome, ServiceError> {
        let bound = bound_head_of(&signature);
        self.cosign_with(proposal_id, local, bound, |_, _| Ok(signature.clone()))
            .await
    }

    /// Reads, decides and appends a co-signature. `offline_head` is the head an offline
    /// signature binds (its event may land anywhere after it); without one the signature is
    /// made here on the head just read, and its event must land right after that head.
    async fn cosign_with(
        &self,
        proposal_id: Uuid,
        local: DateTime<Utc>,
        offline_head: Option<ChainHead>,
        make_signature: impl Fn(&ProposalState, &ChainHead) -> Result<SignatureEnvelope, KeyError>,
    ) -> Result<SignOutcome, ServiceError> {
        retry_on_conflict(proposal_id, async || {
            let (chain_now, governance) = self.on_ledger_clock(local).await?;
            let now = chain_now.clock;
            let mut chain = self.chain_for(chain_now.head, offline_head).await?;
            let state = self
                .proposal_for_decision(&governance, proposal_id, now)
                .await?;
            let signature = make_signature(&state, &chain.head)?;
            let actor = signature.key_id.clone();
            let (deadline, key_bound) = within_key_lifetime(
                state.expires_at,
                key_lapse(&governance, &state, &signature.key_id),
            );
            let outcome = decide_sign(&governance, &state, signature, now, &mut chain)?;
            // The ledger stream's version and the proposal's only, for rolls and motions alike:
            // a governance commit names no other proposal, so decisions on other proposals
            // (signatures, vetoes, new proposals, withdrawals) never conflict with it, and a
            // decision on another proposal made under the replaced governance conflicts on
            // the ledger stream and is decided again under the new one, which refuses it.
            let expected = versions_decided_on(&governance, &state, proposal_id);
            // It may land anywhere after the head it binds (A11), as an offline one does: the
            // versions expected above guard the decision, and events of other proposals landing
            // first cannot hold it back (a loop of them would otherwise starve a commit).
            let landing = Landing {
                deadline: Some(deadline),
                after_head: None,
            };
            self.append(expected, &outcome.events, &actor, now, landing)
                .await
                .map_err(|error| key_bound.refused(error, expired_before_recorded))?;
            Ok(outcome)
        })
        .await
    }

    pub async fn reject(
        &self,
        proposal_id: Uuid,
        key: &impl Sign,
        reason: &str,
        local: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        self.close_with(
            proposal_id,
            key,
            local,
            |governance, state, signature, now, chain| {
                decide_reject(governance, state, signature, reason, now, chain)
            },
            Purpose::Veto,
            Some(reason),
        )
        .await
    }

    pub async fn withdraw(
        &self,
        proposal_id: Uuid,
        key: &impl Sign,
        local: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        self.close_with(
            proposal_id,
            key,
            local,
            |governance, state, signature, now, chain| {
                decide_withdraw(governance, state, signature, now, chain)
            },
            Purpose::Withdraw,
            None,
        )
        .await
    }

    async fn close_with(
        &self,
        proposal_id: Uuid,
        key: &impl Sign,
        local: DateTime<Utc>,
        decide: impl Fn(
            &Governance,
            &ProposalState,
            SignatureEnvelope,
            DateTime<Utc>,
            &mut AtHead,
        ) -> Result<Event, Refusal>,
        purpose: Purpose,
        reason: Option<&str>,
    ) -> Result<(), ServiceError> {
        retry_on_conflict(proposal_id, async || {
            let (chain_now, governance) = self.on_ledger_clock(local).await?;
            let now = chain_now.clock;
            let mut chain = self.chain_for(chain_now.head, None).await?;
            let state = self
                .proposal_for_decision(&governance, proposal_id, now)
                .await?;
            let message = message_for(self.ledger_id, &state, purpose, &chain.head, reason);
            let signature = seal_with(key, message)?;
            let actor = signature.key_id.clone();
            let (deadline, key_bound) = within_key_lifetime(
                state.expires_at,
                key_lapse(&governance, &state, &signature.key_id),
            );
            let event = decide(&governance, &state, signature, now, &mut chain)?;
            // Anywhere after the head it binds, as a co-signature (`cosign_with`).
            let landing = Landing {
                deadline: Some(deadline),
                after_head: None,
            };
            self.append(
                versions_decided_on(&governance, &state, proposal_id),
                std::slice::from_ref(&event),
                &actor,
                now,
                landing,
            )
            .await
            .map_err(|error| key_bound.refused(error, expired_before_recorded))?;
            Ok(())
        })
        .await
    }
}

impl Ledger {
    /// The policy a roll was recorded under, found by its hash in the ledger stream (the
    /// genesis policy or an adopted one): its `structure.quote_deviation_max` bounds the
    /// roll's fill prices even after a later policy replaced it.
    async fn policy_with_hash(&self, policy_hash: &str) -> Result<Policy, ServiceError> {
        let events = self
            .store
            .read_stream(self.ledger_id, LEDGER_STREAM)
            .await?;
        for event in &events {
            let payload =
                Event::from_payload(&event.event_type, event.schema_version, &event.payload)
                    .map_err(|e| ServiceError::Corrupt(format!("seq {}: {e}", event.seq)))?;
            let (json, hash) = match &payload {
                Event::LedgerCreated(genesis) => (&genesis.policy_json, &genesis.policy_hash),
                Event::PolicyAdopted(adopted) => (&adopted.policy_json, &adopted.policy_hash),
                _ => continue,
            };
            if hash == policy_hash {
                return Policy::from_canonical_json(json)
                    .map_err(|e| ServiceError::Corrupt(format!("seq {}: {e}", event.seq)));
            }
        }
        Err(ServiceError::Corrupt(format!(
            "no policy with hash {policy_hash} in the ledger stream"
        )))
    }

    /// Records fills (or a correction) on a committed roll, signed by `key`, a signer of the
    /// set in force. Fills outside the approved bounds are recorded too, as an execution
    /// breach: the returned event says which.
    pub async fn execute(
        &self,
        proposal_id: Uuid,
        request: &ExecutionRequest,
        key: &impl Sign,
        local: DateTime<Utc>,
    ) -> Result<(RollExecuted, StoredEvent), ServiceError> {
        retry_on_conflict(proposal_id, async || {
            // Decided and appended on the ledger's clock, as every decision (`close_with`).
            let (chain_now, governance) = self.on_ledger_clock(local).await?;
            let now = chain_now.clock;
            let mut chain = self.chain_for(chain_now.head, None).await?;
            let events = self.stream(proposal_id).await?;
            let state = ProposalState::from_stream(&events)
                .map_err(|r| ServiceError::Corrupt(r.to_string()))?;
            let policy = self
                .policy_with_hash(&state.recorded.terms.policy_hash)
                .await?;
            let roll = ExecutableRoll::from_stream(&events, policy.structure.quote_deviation_max)?;
            let corrected = validate_request(&request.fills, &request.corrects)?;
            let message =
                execute_message(&governance, &roll, &request.fills, &corrected, &chain.head);
            let signature = seal_with(key, message)?;
            let actor = signature.key_id.clone();
            let event = decide_execute(
                &governance,
                &roll,
                request.clone(),
                signature,
                now,
                &mut chain,
            )?;
            let executor_lapses = governance
                .set
                .by_key(&key.public().as_bytes())
                .and_then(|member| member.valid_before);
            let (deadline, key_bound) =
                within_key_lifetime(roll.recording_deadline(), executor_lapses);
            let landing = Landing {
                deadline: Some(deadline),
                after_head: Some(chain.head),
            };
            let expected = vec![
                (
                    LEDGER_STREAM.to_string(),
                    ExpectedVersion::Exact(governance.stream_version),
                ),
                (
                    proposal_id.to_string(),
                    ExpectedVersion::Exact(u64::from(roll.stream_version)),
                ),
            ];
            let written = self
                .append(expected, std::slice::from_ref(&event), &actor, now, landing)
                .await
                .map_err(|error| {
                    key_bound.refused(error, |error| match error {
                        ServiceError::Store(StoreError::DeadlinePassed { .. }) => {
                            ServiceError::Refused(Refusal::ExecutionRecordingClosed {
                                proposal_id,
                                deadline: format_timestamp(roll.recording_deadline()),
                                grace_days: EXECUTION_RECORDING_GRACE_DAYS,
                            })
                        }
                        other => other,
                    })
                })?;
            let Event::RollExecuted(executed) = event else {
                unreachable!("decide_execute decides a roll.executed event")
            };
            let stored = written
                .into_iter()
                .next()
                .ok_or_else(|| ServiceError::Corrupt("the append returned no event".into()))?;
            Ok((executed, stored))
        })
        .await
    }
}

/// Where a proposer learns what the history draws on each closed layer.
enum LayerSource<'a> {
    /// This client's pin, synced to the head: the layers its auditor folded.
    Pinned(&'a mut Verified),
    /// No pin: the auditor folds the ledger from genesis.
    Genesis,
}

/// A proposal drafted for one attempt: the draft, a roll's report, and the head and layers it
/// was made at.
struct Drafted {
    draft: ProposalDraft,
    report: Option<SizingReport>,
    head: ChainHead,
    layers: LayerBook,
}

/// The end of the lifetime (`valid_before`) of the key `key_id` deciding on `state`, in the set
/// that judges its signature (`decide_sign`): the set in force or, for a key new in a motion's
/// next set, that set.
fn key_lapse(
    governance: &Governance,
    state: &ProposalState,
    key_id: &str,
) -> Option<DateTime<Utc>> {
    let next = approval::proposed_set(state).ok().flatten();
    governance
        .set
        .by_key_id(key_id)
        .or_else(|| next.as_ref().and_then(|next| next.by_key_id(key_id)))
        .and_then(|member| member.valid_before)
}

/// A decision's deadline, brought forward to the last instant its signer's key still counts
/// (a microsecond before `key_lapse`, check A15): an event judged valid at the ledger's `now`
/// must not land after its key lapsed. Also says whether the key's lifetime set it.
fn within_key_lifetime(
    deadline: DateTime<Utc>,
    key_lapse: Option<DateTime<Utc>>,
) -> (DateTime<Utc>, KeyBound) {
    let last = |before: DateTime<Utc>| before - chrono::Duration::microseconds(1);
    match key_lapse {
        Some(before) if last(before) < deadline => (last(before), KeyBound::Lapses(before)),
        _ => (deadline, KeyBound::Outlives),
    }
}

/// Whether a decision's deadline is its signer's key lapsing (`within_key_lifetime`).
#[derive(Clone, Copy)]
enum KeyBound {
    /// The key is valid until the decision's own deadline.
    Outlives,
    /// The key's `valid_before`, earlier than the decision's own deadline.
    Lapses(DateTime<Utc>),
}

impl KeyBound {
    /// An append refused past its deadline: the key lapsing when it set the deadline, else
    /// `otherwise` (the decision's own rule).
    fn refused(
        self,
        error: ServiceError,
        otherwise: impl FnOnce(ServiceError) -> ServiceError,
    ) -> ServiceError {
        match (self, &error) {
            (
                KeyBound::Lapses(valid_before),
                ServiceError::Store(StoreError::DeadlinePassed { recorded_at, .. }),
            ) => ServiceError::Refused(Refusal::KeyLapsedBeforeRecorded {
                valid_before: format_timestamp(valid_before),
                recorded_at: recorded_at.clone(),
            }),
            _ => otherwise(error),
        }
    }
}

/// A roll that may not draw on the layer it names: conflicting numbers or a missing id are
/// input errors (the file must change); a body equal to a pending proposal is refused.
fn layer_conflict(conflict: LayerConflict) -> ServiceError {
    match conflict {
        LayerConflict::SameAsPending { .. } => ServiceError::Refused(Refusal::Layer(conflict)),
        other => ServiceError::BadInput(other.to_string()),
    }
}

/// Which rule bounds a recording's chain time first (`recording_deadline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecordingBound {
    /// A2: not after its own expiry.
    Expiry,
    /// A9: not more than W after the time its proposal id carries.
    IdWindow,
    /// T2: not more than the skew after its `created_at`.
    Skew,
}

/// The latest chain time a recording of `draft` (created at `created_at`) may get, and the
/// rule that sets it. The store records the later of the ledger's clock and the head's time,
/// which a writer with a fast clock may have moved ahead (on SQLite, or in a ledger written
/// before one clock per ledger); past any of these bounds the recording would be invalid, so
/// the append is refused instead of writing it.
fn recording_deadline(
    draft: &ProposalDraft,
    created_at: DateTime<Utc>,
    skew_seconds: u32,
) -> (DateTime<Utc>, RecordingBound) {
    let id_deadline = Uuid::parse_str(&draft.terms.proposal_id)
        .ok()
        .and_then(|id| uuid_v7_time(&id))
        .map(|time| time + chrono::Duration::seconds(ID_TIME_WINDOW_SECONDS));
    let skew_deadline = created_at + chrono::Duration::seconds(i64::from(skew_seconds));
    [
        parse_timestamp(&draft.terms.expires_at).map(|at| (at, RecordingBound::Expiry)),
        id_deadline.map(|at| (at, RecordingBound::IdWindow)),
        Some((skew_deadline, RecordingBound::Skew)),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|(at, _)| *at)
    .expect("the skew's deadline is always there")
}

/// A recording's append refused past its deadline, as the refusal of the rule that set it
/// (`recording_deadline`; `created_at` is the ledger's clock it was drafted on).
fn recording_refused(
    error: ServiceError,
    bound: RecordingBound,
    created_at: DateTime<Utc>,
    skew_seconds: u32,
) -> ServiceError {
    let ServiceError::Store(StoreError::DeadlinePassed { recorded_at, .. }) = &error else {
        return error;
    };
    let recorded_at = recorded_at.clone();
    match bound {
        RecordingBound::IdWindow => ServiceError::Refused(Refusal::ChainClockAhead {
            ledger_time: recorded_at,
            local_time: format_timestamp(created_at),
            window_seconds: ID_TIME_WINDOW_SECONDS,
        }),
        RecordingBound::Skew => ServiceError::Refused(Refusal::ClockBehindChain {
            local_time: format_timestamp(created_at),
            head_time: recorded_at,
            max_seconds: skew_seconds,
        }),
        RecordingBound::Expiry => expired_before_recorded(error),
    }
}

/// A decision appended with the proposal's expiry as its deadline: the chain time passing it is
/// the proposal expiring before the decision could be recorded.
fn expired_before_recorded(error: ServiceError) -> ServiceError {
    match error {
        ServiceError::Store(StoreError::DeadlinePassed { deadline, .. }) => {
            ServiceError::Refused(Refusal::ExpiredBeforeRecorded { deadline })
        }
        other => other,
    }
}

/// The stream versions a decision on a proposal was made on: the ledger stream's (the
/// governance it read) and the proposal's own. An append expecting them is refused as a
/// conflict when either moved since.
fn versions_decided_on(
    governance: &Governance,
    state: &ProposalState,
    proposal_id: Uuid,
) -> Vec<(String, ExpectedVersion)> {
    vec![
        (
            LEDGER_STREAM.to_string(),
            ExpectedVersion::Exact(governance.stream_version),
        ),
        (
            proposal_id.to_string(),
            ExpectedVersion::Exact(state.stream_version),
        ),
    ]
}

/// The head an offline signature binds, when its message decodes (`decide_sign` refuses it
/// otherwise, naming why).
fn bound_head_of(signature: &SignatureEnvelope) -> Option<ChainHead> {
    let message = crate::crypto::from_hex(&signature.message).ok()?;
    crate::crypto::canonical::decode_signed_message(&message)
        .ok()
        .map(|decoded| decoded.head)
}

/// Runs `attempt` (read, decide, append) again while its append is refused as a conflict:
/// another writer moved the ledger head or the proposal first, so the next attempt re-reads,
/// signs on the new head and decides again. Gives up after `CONFLICT_RETRIES` attempts.
async fn retry_on_conflict<T>(
    proposal_id: Uuid,
    mut attempt: impl AsyncFnMut() -> Result<T, ServiceError>,
) -> Result<T, ServiceError> {
    for _ in 0..CONFLICT_RETRIES {
        match attempt().await {
            Err(ServiceError::Store(
                StoreError::Conflict { .. } | StoreError::HeadMoved { .. },
            )) => continue,
            done => return done,
        }
    }
    Err(Refusal::KeptChanging {
        proposal_id,
        attempts: CONFLICT_RETRIES,
    }
    .into())
}
