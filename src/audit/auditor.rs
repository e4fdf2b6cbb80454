//! The streaming auditor: replays a ledger event by event and checks everything an auditor
//! needs, with the same decide functions that wrote it, so the write rules and the audit rules
//! cannot drift apart. Pure: feed it events in seq order; it keeps the hash-chain head, the
//! Merkle frontier, the governance in force, the proposals still open (closed ones are
//! dropped) and the ids of the last minutes (`RecentIds`), so memory does not grow with the
//! ledger's length.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::bound_heads::{AuditedChain, RecentHashes};
use super::committed_rolls::CommittedRolls;
use crate::crypto::merkle::MerkleBuilder;
use crate::crypto::to_hex;
use crate::domain::approval::{
    check_recorded_parsed, decide_reject_trusting, decide_sign_trusting, decide_withdraw_trusting,
    DrawsFrom, LayerBook, ParsedRoll, ProposalState, Status,
};
use crate::domain::chain::ChainHead;
use crate::domain::envelope::{
    parse_canonical_uuid, uuid_v7_near, uuid_v7_time, ChainVerifier, StoredEvent,
    ID_TIME_WINDOW_SECONDS, PAYLOAD_BYTES_MAX,
};
use crate::domain::events::{
    Event, ProposalKind, ProposalRecorded, RollExecuted, SignatureEnvelope, LEDGER_FORMAT,
    LEDGER_STREAM,
};
use crate::domain::execution::{
    decide_execute_trusting, BodyTerms, ExecutableRoll, ExecutionRequest,
};
use crate::domain::governance::{ActiveSet, Governance, Mismatch, Refusal, VerifiedSignatures};
use crate::domain::layers::LayerKey;
use crate::sizing::Proposal;

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
    /// Proposals (rolls and motions) by status, judged at the last event's time under the
    /// governance in force then (one bound to a replaced set or policy counts as expired).
    pub proposals: BTreeMap<String, u64>,
    pub signatures: u64,
    /// `roll.executed` events, and those of them that recorded an execution breach.
    pub executions: u64,
    pub execution_breaches: u64,
    pub signer_set_version: u64,
    pub signers: Vec<String>,
    /// The key id of each of `signers`, in the same order.
    pub signer_key_ids: Vec<String>,
    pub threshold: u32,
    pub policy_version: u64,
    pub policy_hash: String,
    /// The hash of seq 1: the ledger's identity, which a reviewer pins (`verify --genesis`).
    pub genesis_hash: String,
    /// The latest seq a signature binds (check A11): events up to it cannot be changed, removed
    /// or inserted without breaking a signature; the ones after it only by their hashes, which
    /// whoever holds the file can recompute (docs/audit-format.md, "What a valid export proves").
    pub signed_through_seq: u64,
}

const EXECUTION_GRACE_DAYS: i64 = crate::domain::execution::EXECUTION_RECORDING_GRACE_DAYS;

/// Proposals whose expiry passed this long before the current event are dropped from memory:
/// nothing valid can refer to them any more (the grace covers writers' clock skew).
const EXPIRED_EVICTION_GRACE_HOURS: i64 = 24;

/// Below this many open proposals no sweep runs: it would not pay for itself.
const SWEEP_OPEN_MIN: usize = 4096;

fn sweep_open_min() -> usize {
    SWEEP_OPEN_MIN
}

/// UUIDv7 ids seen whose time is recent. An id is valid only on an event within
/// `ID_TIME_WINDOW_SECONDS` of the time it carries (checked before an id is remembered), so
/// once chain time passes an id's time by more than that window no valid event can carry it
/// again: it is forgotten, and a later copy is refused for its time alone. Memory is the ids of
/// about two windows of chain time, whatever the ledger's length.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RecentIds {
    ids: HashSet<u128>,
    /// In the order seen: chain time never decreases, so the times the ids carry are in order
    /// to within two windows, and an id waits at most that long behind a later one.
    in_order_seen: VecDeque<u128>,
}

impl RecentIds {
    /// Remembers `id`, a UUIDv7; false when it was seen already.
    fn insert(&mut self, id: uuid::Uuid) -> bool {
        if !self.ids.insert(id.as_u128()) {
            return false;
        }
        self.in_order_seen.push_back(id.as_u128());
        true
    }

    fn contains(&self, id: uuid::Uuid) -> bool {
        self.ids.contains(&id.as_u128())
    }

    /// Forgets the ids that no event at `now` or later can carry.
    fn forget_expired(&mut self, now: DateTime<Utc>) {
        let cutoff = now - Duration::seconds(ID_TIME_WINDOW_SECONDS);
        while let Some(&id) = self.in_order_seen.front() {
            let carried = uuid_v7_time(&uuid::Uuid::from_u128(id));
            if carried.is_some_and(|time| time >= cutoff) {
                break;
            }
            self.in_order_seen.pop_front();
            self.ids.remove(&id);
        }
    }
}

/// What an auditor keeps of every open proposal, loaded or not (`Auditor::open_index`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct OpenEntry {
    first_seq: u64,
    expires_at: DateTime<Utc>,
}

impl OpenEntry {
    fn of(state: &ProposalState) -> OpenEntry {
        OpenEntry {
            first_seq: state.first_seq,
            expires_at: state.expires_at,
        }
    }
}

/// Serializable, so a client can save where it stopped and resume there (`snapshot`, `restore`;
/// `pin.rs`): the state is exactly what the next event's checks need.
#[derive(Serialize, Deserialize)]
pub struct Auditor {
    chain: ChainVerifier,
    merkle: MerkleBuilder,
    governance: Option<Governance>,
    /// The open proposals' states: all of them in an auditor that walked from genesis, those
    /// loaded so far in a resumed one. Not in `snapshot`: a client saves each open proposal on
    /// its own (`open_proposal`), so a sync rewrites the few its events touched, and loads one
    /// only when an event names it (`saved_wanted`, `load_open`). Read when present, as a state
    /// saved whole before that holds them.
    #[serde(default, skip_serializing)]
    open: HashMap<String, ProposalState>,
    /// Every open proposal, loaded or not, with what is needed of all of them: its recording's
    /// seq (the bound-head window) and its expiry (sweeps). In `snapshot`, so a sync costs the
    /// events it verifies, not the proposals left open (a signer could leave thousands open).
    #[serde(default)]
    open_index: BTreeMap<String, OpenEntry>,
    /// False in a state saved before `open_index` existed: its caller loads every open one.
    #[serde(default)]
    open_indexed: bool,
    /// Events the previous event made due, in order (a commit after the K-th signature, the
    /// adoption after a governance commit).
    due: VecDeque<Event>,
    /// After an adoption: pending proposals bound to the old governance may be expired.
    #[serde(with = "expiry_reason")]
    expiring: Option<(&'static str, u64)>,
    /// The actor (key id) of the last signature that decided a commit: the actor every event
    /// it made due, and the expiries after its adoption, must carry (check C13).
    deciding_actor: Option<String>,
    closed: BTreeMap<String, u64>,
    signatures: u64,
    /// Committed rolls whose executions may still be recorded (check A13), by proposal id:
    /// compact records, each kept until its recording deadline. Not in `snapshot`: a client
    /// saves each roll on its own (`take_touched_rolls`) and loads those the next events need
    /// (`saved_wanted`), as it does closed layers; a roll loaded after its deadline is refused
    /// by that deadline (A13), not by its absence.
    #[serde(skip)]
    committed: CommittedRolls,
    /// Committed rolls changed since the last `take_touched_rolls`.
    #[serde(skip)]
    touched_rolls: BTreeSet<uuid::Uuid>,
    #[serde(default)]
    executions: u64,
    #[serde(default)]
    execution_breaches: u64,
    /// The number of open proposals at which the next sweep of long-expired ones runs: twice
    /// what the last sweep left (at least `SWEEP_OPEN_MIN`), so sweeps cost O(1) per event
    /// however many proposals a proposer keeps open.
    #[serde(default = "sweep_open_min")]
    sweep_at_open: usize,
    last_time: Option<DateTime<Utc>>,
    ledger_id: Option<uuid::Uuid>,
    genesis_hash: Option<[u8; 32]>,
    /// Event ids that a later event could still carry (check C8).
    recent_event_ids: RecentIds,
    /// The closed layers drawn on (check A12): every layer's numbers, the committed rolls on
    /// it and the open ones that may still draw. In `snapshot` only which layer each pending
    /// roll draws on: a client saves each layer on its own (`take_touched_layers`) and loads
    /// those the next events need (`layers_wanted`).
    layers: LayerBook,
    /// Ids of proposals that a later recording could still carry (check A9); older ones that
    /// are still open are in `open`.
    recent_proposal_ids: RecentIds,
    /// The hashes a later signature may bind (check A11). Not saved: a resumed auditor holds
    /// the hashes since it resumed and defers older bound heads to its caller.
    #[serde(skip)]
    recent_hashes: RecentHashes,
    /// The latest seq a verified signature binds: no event at or before it can be changed,
    /// removed or inserted without breaking that signature. Events after it are bound by their
    /// hashes only (an offline signature binds the head of its request, which may lie well
    /// before it, and a commit carries no signature of its own).
    #[serde(default)]
    signed_through: u64,
    /// Heads bound at or before the seq a resumed auditor started after, with the seq of the
    /// event whose signature binds each: the caller checks them (`take_deferred_heads`).
    #[serde(skip)]
    deferred_heads: Vec<(u64, ChainHead)>,
    /// The clock this run verifies on, given for each run and moved on by a live walk
    /// (`set_verifier_clock`; never saved): the verifying machine's for `verify`, the ledger's
    /// for a client's sync. An event recorded more than
    /// the policy's skew after it is refused (check T1).
    #[serde(skip)]
    verifier_clock: DateTime<Utc>,
}

/// The approval check that makes a commit (A3) or an adoption (A7) due right after the
/// signature deciding it, as docs/audit-format.md numbers them.
fn approval_check_of(due: &Event) -> &'static str {
    match due {
        Event::SignerSetAdopted(_) | Event::PolicyAdopted(_) => "A7",
        _ => "A3",
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
                .map_err(|error| format!("{error} (C9)"))
                .and_then(|payload| {
                    // Check C11: readers may rely on one spelling (docs/audit-format.md,
                    // "Canonical JSON text"), so the stored bytes must be exactly what
                    // rollbook writes for the value they parse to.
                    if payload.is_payload(&event.payload) {
                        Ok(payload)
                    } else {
                        Err(format!("the {} payload is not in canonical form (whitespace, key order or an escape differs from what rollbook writes) (C11)", event.event_type))
                    }
                })
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
    /// An auditor run on a machine whose clock reads `verifier_clock` (check T1).
    pub fn new(verifier_clock: DateTime<Utc>) -> Self {
        Auditor {
            verifier_clock,
            chain: ChainVerifier::new(),
            merkle: MerkleBuilder::new(),
            governance: None,
            open: HashMap::new(),
            open_index: BTreeMap::new(),
            open_indexed: true,
            due: VecDeque::new(),
            expiring: None,
            deciding_actor: None,
            closed: BTreeMap::new(),
            signatures: 0,
            committed: CommittedRolls::default(),
            touched_rolls: BTreeSet::new(),
            executions: 0,
            execution_breaches: 0,
            sweep_at_open: SWEEP_OPEN_MIN,
            last_time: None,
            ledger_id: None,
            genesis_hash: None,
            recent_event_ids: RecentIds::default(),
            layers: LayerBook::default(),
            recent_proposal_ids: RecentIds::default(),
            recent_hashes: RecentHashes::default(),
            signed_through: 0,
            deferred_heads: Vec::new(),
        }
    }

    /// Moves the clock this run verifies on (check T1) forward: a walk of a live ledger meets
    /// events written after it started, and a long one must not refuse them for that.
    pub fn set_verifier_clock(&mut self, verifier_clock: DateTime<Utc>) {
        self.verifier_clock = verifier_clock;
    }

    /// The heads bound by the signatures pushed since the last call that lie at or before the
    /// seq this auditor was resumed after, each with the seq of the event that binds it. The
    /// caller must check each against the hash it verified at that seq (check A11).
    pub fn take_deferred_heads(&mut self) -> Vec<(u64, ChainHead)> {
        std::mem::take(&mut self.deferred_heads)
    }

    /// The chain as the decision on `event` sees it (check A11).
    fn chain_at(&self, event: &StoredEvent) -> AuditedChain<'_> {
        AuditedChain {
            head: ChainHead {
                seq: event.seq - 1,
                hash: event.prev_hash,
            },
            recent: &self.recent_hashes,
            deferred: Vec::new(),
            highest_bound: 0,
        }
    }

    pub fn events(&self) -> u64 {
        self.chain.events_verified()
    }

    /// The state as bytes (JSON) but the open proposals, which are saved one by one
    /// (`open_proposal`); `restore` resumes from both.
    pub fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("the auditor's state is plain data and serializes")
    }

    /// The closed layers drawn on (check A12) as the events so far leave them.
    pub fn layers(&self) -> &LayerBook {
        &self.layers
    }

    /// The signer set in force after the events so far (`None` before the genesis): the set
    /// whose keys may sign a checkpoint of this size.
    pub fn signer_set(&self) -> Option<&ActiveSet> {
        self.governance.as_ref().map(|governance| &governance.set)
    }

    /// The chain time of the last event audited (a signed checkpoint's signers are judged at
    /// it: W3 and key lifetimes).
    pub fn last_event_time(&self) -> Option<DateTime<Utc>> {
        self.last_time
    }

    /// The policy's `timing.clock_skew_max_seconds` in force after the events so far.
    pub fn clock_skew_max_seconds(&self) -> u32 {
        self.clock_skew()
            .num_seconds()
            .clamp(0, i64::from(u32::MAX)) as u32
    }

    /// The head the auditor has reached: the last event's seq and hash.
    pub fn head(&self) -> ChainHead {
        ChainHead {
            seq: self.events(),
            hash: self.head_hash(),
        }
    }

    /// The saved state `event` needs that a resumed auditor has not loaded (`load_layer`,
    /// `load_roll`): a roll's recording needs its layer and the one owning its numbers; a
    /// commit, veto, withdrawal or expiry the layer its roll draws on; an execution its
    /// committed roll. A payload that does not parse needs none: the rules refuse it.
    pub fn saved_wanted(&self, event: &StoredEvent) -> Vec<Saved> {
        let Ok(payload) =
            Event::from_payload(&event.event_type, event.schema_version, &event.payload)
        else {
            return Vec::new();
        };
        match &payload {
            Event::ProposalRecorded(recorded) => Proposal::from_toml_str(&recorded.terms.body)
                .map(|proposal| self.layers.wanted_for_recording(&proposal))
                .unwrap_or_default()
                .into_iter()
                .map(Saved::Layer)
                .collect(),
            Event::ProposalSigned(_) => self.open_wanted(payload.stream_id()).into_iter().collect(),
            Event::ProposalCommitted(_)
            | Event::ProposalRejected(_)
            | Event::ProposalWithdrawn(_)
            | Event::ProposalExpired(_) => self
                .open_wanted(payload.stream_id())
                .into_iter()
                .chain(
                    self.layers
                        .wanted_for_closing(payload.stream_id())
                        .map(Saved::Layer),
                )
                .collect(),
            Event::RollExecuted(executed)
                if self.committed_roll(&executed.proposal_id).is_none() =>
            {
                vec![Saved::Roll(executed.proposal_id.clone())]
            }
            _ => Vec::new(),
        }
    }

    /// The open proposal `id` when it is open and not loaded.
    fn open_wanted(&self, id: &str) -> Option<Saved> {
        (self.open_index.contains_key(id) && !self.open.contains_key(id))
            .then(|| Saved::Open(id.to_string()))
    }

    /// Adds a layer saved by `take_touched_layers`.
    pub fn load_layer(&mut self, layer_id: &str, saved: &[u8]) -> Result<(), String> {
        self.layers.load(layer_id, saved)
    }

    /// Adds a committed roll saved by `take_touched_rolls` (a no-op when it is held).
    pub fn load_roll(&mut self, proposal_id: &str, saved: &[u8]) -> Result<(), String> {
        if self.committed_roll(proposal_id).is_some() {
            return Ok(());
        }
        let roll: ExecutableRoll = serde_json::from_slice(saved)
            .map_err(|error| format!("saved committed roll {proposal_id}: {error}"))?;
        self.committed
            .insert(roll)
            .map_err(|error| format!("saved committed roll {proposal_id}: {error}"))
    }

    /// The committed roll held for `proposal_id`, found only under the id's one spelling (as
    /// when the rolls were held by their id's text).
    fn committed_roll(&self, proposal_id: &str) -> Option<&ExecutableRoll> {
        self.committed.get(&parse_canonical_uuid(proposal_id)?)
    }

    /// The committed rolls the events since the last call changed, to save: (id, bytes).
    pub fn take_touched_rolls(&mut self) -> Vec<(String, Vec<u8>)> {
        std::mem::take(&mut self.touched_rolls)
            .into_iter()
            .filter_map(|id| {
                let roll = self.committed.get(&id)?;
                let saved = serde_json::to_vec(roll).expect("rolls serialize");
                Some((id.to_string(), saved))
            })
            .collect()
    }

    /// The layers the events since the last call changed, to save: (id, numbers key, bytes).
    pub fn take_touched_layers(&mut self) -> Vec<(String, String, Vec<u8>)> {
        self.layers.take_touched()
    }

    /// Forgets which rolls and layers changed, for a verifier with nowhere to save them.
    pub fn forget_touched(&mut self) {
        self.touched_rolls.clear();
        self.layers.forget_touched();
    }

    /// The state of the open proposal `id` as bytes (JSON); `None` when it is not open.
    pub fn open_proposal(&self, id: &str) -> Option<Vec<u8>> {
        self.open.get(id).map(|state| {
            serde_json::to_vec(state).expect("a proposal's state is plain data and serializes")
        })
    }

    /// The ids of the open proposals, loaded or not.
    pub fn open_ids(&self) -> impl Iterator<Item = &str> {
        self.open_index.keys().map(String::as_str)
    }

    /// An auditor resumed from a `snapshot`, on a machine whose clock reads `verifier_clock`
    /// (check T1); and whether its caller must `load_open` every saved open proposal before the
    /// first `push` (a state saved before open proposals were indexed in the snapshot). Else
    /// it loads those `saved_wanted` asks for.
    pub fn restore(
        snapshot: &[u8],
        verifier_clock: DateTime<Utc>,
    ) -> Result<(Auditor, bool), String> {
        let mut auditor: Auditor =
            serde_json::from_slice(snapshot).map_err(|error| error.to_string())?;
        auditor.verifier_clock = verifier_clock;
        let load_every_open = !auditor.open_indexed;
        auditor.open_indexed = true;
        // A state saved whole holds its open proposals: index them.
        for (id, state) in &auditor.open {
            auditor.open_index.insert(id.clone(), OpenEntry::of(state));
        }
        for entry in auditor.open_index.values() {
            auditor
                .recent_hashes
                .opened(entry.first_seq, entry.expires_at);
        }
        auditor.recent_hashes.resumed_after = Some(auditor.events());
        Ok((auditor, load_every_open))
    }

    /// Adds an open proposal saved by `open_proposal` (a no-op when it is loaded already).
    pub fn load_open(&mut self, id: &str, saved: &[u8]) -> Result<(), String> {
        if self.open.contains_key(id) {
            return Ok(());
        }
        let state: ProposalState = serde_json::from_slice(saved)
            .map_err(|error| format!("open proposal {id}: {error}"))?;
        if !self.open_index.contains_key(id) {
            // Only a state saved before the index holds an open proposal it does not name.
            let entry = OpenEntry::of(&state);
            self.recent_hashes.opened(entry.first_seq, entry.expires_at);
            self.open_index.insert(id.to_string(), entry);
        }
        self.open.insert(id.to_string(), state);
        Ok(())
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
        // Another format hashes and signs other bytes: say so before any hash is compared
        // (docs/audit-format.md, "Format versions").
        if let Ok(Event::LedgerCreated(genesis)) = &payload {
            if genesis.format != LEDGER_FORMAT {
                let refusal = Refusal::GenesisFormat {
                    format: genesis.format.clone(),
                };
                return Err(fail(format!("{refusal} (A1)")));
            }
        }
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
        self.check_event_id(event, at).map_err(fail)?;
        self.last_time = Some(at);
        self.ledger_id = Some(event.ledger_id);
        if event.seq == 1 {
            self.genesis_hash = Some(event.hash);
        }
        let payload = payload.map_err(fail)?;
        if payload.event_type() != event.event_type {
            return Err(fail(format!(
                "event type {} does not match its payload (C9)",
                event.event_type
            )));
        }
        if payload.stream_id() != event.stream_id {
            return Err(fail(format!(
                "stream {} does not match the payload's {} (C9)",
                event.stream_id,
                payload.stream_id()
            )));
        }
        self.apply(event, payload, roll, at, verified)
            .map_err(fail)?;
        self.check_not_future(at).map_err(fail)?;
        self.recent_hashes.push(event.seq, event.hash);
        self.recent_hashes.forget_unneeded(at, event.seq + 1);
        Ok(())
    }

    /// The policy's `timing.clock_skew_max_seconds` in force (after the genesis: the first
    /// event is checked after it set the governance).
    fn clock_skew(&self) -> Duration {
        let seconds = self.governance.as_ref().map_or(
            crate::sizing::Policy::default()
                .timing
                .clock_skew_max_seconds,
            |governance| governance.policy.timing.clock_skew_max_seconds,
        );
        Duration::seconds(i64::from(seconds))
    }

    /// Checks T1: no event lies in the verifying machine's future by more than the skew (a
    /// writer's fast clock; on PostgreSQL the ledger's clock is the server's, so one means a
    /// server clock set wrong or a row written around rollbook).
    fn check_not_future(&self, at: DateTime<Utc>) -> Result<(), String> {
        let skew = self.clock_skew();
        if at > self.verifier_clock + skew {
            return Err(format!(
                "recorded_at {} is more than {} s ahead of the clock it is verified on ({}): a writer's clock ran fast, or the verifying one is slow (T1)",
                crate::domain::envelope::format_timestamp(at),
                skew.num_seconds(),
                crate::domain::envelope::format_timestamp(self.verifier_clock)
            ));
        }
        Ok(())
    }

    /// Checks C7 and C8: the event id is a UUIDv7 of the event's own time, seen only once.
    fn check_event_id(&mut self, event: &StoredEvent, at: DateTime<Utc>) -> Result<(), String> {
        if !uuid_v7_near(&event.event_id, at) {
            return Err(format!(
                "event_id {} is not a UUIDv7 whose time lies within {ID_TIME_WINDOW_SECONDS} s of recorded_at (C7)",
                event.event_id
            ));
        }
        self.recent_event_ids.forget_expired(at);
        self.recent_proposal_ids.forget_expired(at);
        if !self.recent_event_ids.insert(event.event_id) {
            return Err(format!("event_id {} appears twice (C8)", event.event_id));
        }
        Ok(())
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
                    "expected {} (decided by the previous event in the same transaction), found {} ({})",
                    expected.event_type(),
                    payload.event_type(),
                    approval_check_of(&expected)
                ));
            }
            self.check_deciding_actor(event)?;
        } else if matches!(
            payload,
            Event::ProposalCommitted(_) | Event::SignerSetAdopted(_) | Event::PolicyAdopted(_)
        ) {
            return Err(format!(
                "{} without the K valid signatures that decide it ({})",
                payload.event_type(),
                approval_check_of(&payload)
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
                return Err("the ledger does not start with ledger.created (A1)".into());
            };
            if event.stream_version != 1 || event.stream_id != LEDGER_STREAM {
                return Err("the genesis must be version 1 of the ledger stream (A1)".into());
            }
            if event.actor.as_deref() != Some(&genesis.signature.key_id) {
                return Err("the genesis actor is not its signer (C13)".into());
            }
            let governance = Governance::genesis(event.ledger_id, genesis)
                .map_err(|r| format!("genesis: {r} (A1)"))?;
            governance
                .creator_valid_at(&genesis.signature.key_id, at)
                .map_err(|r| format!("genesis: {r} (A15)"))?;
            self.governance = Some(governance);
            return Ok(());
        };
        // Taken out for the match (so the open proposals can be borrowed) and put back after;
        // on a failure the walk ends anyway.
        let result = self.apply_governed(&mut governance, event, payload, roll, at, verified);
        self.governance = Some(governance);
        result?;
        self.evict(at);
        self.forget_closed_executions(at);
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
            Event::LedgerCreated(_) => return Err("a second ledger.created (A1)".into()),
            Event::SignerSetAdopted(_) | Event::PolicyAdopted(_) => {
                if event.stream_version != governance.stream_version + 1 {
                    return Err(format!(
                        "ledger stream version {}, expected {} (C10)",
                        event.stream_version,
                        governance.stream_version + 1
                    ));
                }
                let old_set = governance.set.version;
                let old_policy = governance.policy_version;
                governance
                    .apply(&payload)
                    .map_err(|r| format!("{r} (A7)"))?;
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
                    "the actor is not the signer (C13)",
                )?;
                let mut chain = self.chain_at(event);
                let outcome = decide_sign_trusting(
                    governance,
                    state,
                    signed.signature.clone(),
                    at,
                    &mut chain,
                    verified,
                )
                .map_err(|r| {
                    format!(
                        "signature of proposal {}: {r} ({})",
                        signed.proposal_id,
                        check_of(&r, "A3")
                    )
                })?;
                self.keep_bound_heads(event, chain.deferred, chain.highest_bound);
                // What the writer had to append after this signature, in the same transaction,
                // with this signature's actor.
                if outcome.events.len() > 1 {
                    self.deciding_actor = event.actor.clone();
                }
                self.due.extend(outcome.events.into_iter().skip(1));
                self.signatures += 1;
                self.evolve(&payload, event);
            }
            Event::ProposalCommitted(committed) => {
                self.check_version(&committed.proposal_id, event)?;
                if let Some(state) = self.evolve(&payload, event) {
                    if state.recorded.terms.kind == ProposalKind::Roll {
                        // The policy in force is the one the roll was recorded under (A3).
                        let deviation_max = governance.policy.structure.quote_deviation_max;
                        let roll = ExecutableRoll::committed(&state, deviation_max)
                            .map_err(|r| format!("{r} (A13)"))?;
                        self.touched_rolls.insert(roll.proposal_id);
                        self.committed
                            .insert(roll)
                            .map_err(|error| format!("{error} (A13)"))?;
                    }
                }
            }
            Event::RollExecuted(executed) => {
                self.execute(governance, event, executed, &payload, at, verified)?;
            }
            Event::ProposalRejected(rejected) => {
                let state = self.open_state_signed_by_actor(
                    &rejected.proposal_id,
                    &rejected.signature,
                    event,
                    "the actor is not the signer of the veto (C13)",
                )?;
                let mut chain = self.chain_at(event);
                let expected = decide_reject_trusting(
                    governance,
                    state,
                    rejected.signature.clone(),
                    &rejected.reason,
                    at,
                    &mut chain,
                    verified,
                )
                .map_err(|r| {
                    format!(
                        "veto of proposal {}: {r} ({})",
                        rejected.proposal_id,
                        check_of(&r, "A4")
                    )
                })?;
                self.keep_bound_heads(event, chain.deferred, chain.highest_bound);
                if expected != payload {
                    return Err("the veto differs from what its signature decides (A4)".into());
                }
                self.evolve(&payload, event);
            }
            Event::ProposalWithdrawn(withdrawn) => {
                let state = self.open_state_signed_by_actor(
                    &withdrawn.proposal_id,
                    &withdrawn.signature,
                    event,
                    "the actor is not the signer of the withdrawal (C13)",
                )?;
                let mut chain = self.chain_at(event);
                decide_withdraw_trusting(
                    governance,
                    state,
                    withdrawn.signature.clone(),
                    at,
                    &mut chain,
                    verified,
                )
                .map_err(|r| {
                    format!(
                        "withdrawal of proposal {}: {r} ({})",
                        withdrawn.proposal_id,
                        check_of(&r, "A5")
                    )
                })?;
                self.keep_bound_heads(event, chain.deferred, chain.highest_bound);
                self.evolve(&payload, event);
            }
            Event::ProposalExpired(expired) => {
                let Some((reason, old_version)) = self.expiring else {
                    return Err("proposal.expired outside a governance change (A6)".into());
                };
                self.check_version(&expired.proposal_id, event)?;
                self.check_deciding_actor(event)?;
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
                        "proposal {} cannot expire for {:?} here (A6)",
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
                "proposal.recorded at stream version {}, expected 1 (C10)",
                event.stream_version
            ));
        }
        let proposal_id = &recorded.terms.proposal_id;
        // Check A9. A malformed id is refused by the rules below, which name it.
        if let Ok(id) = uuid::Uuid::parse_str(proposal_id) {
            if self.open_index.contains_key(proposal_id) || self.recent_proposal_ids.contains(id) {
                return Err(format!(
                    "proposal {proposal_id} was recorded before: a proposal id is never reused (A9)"
                ));
            }
            if !uuid_v7_near(&id, at) {
                return Err(format!(
                    "proposal id {proposal_id} is not a UUIDv7 whose time lies within {ID_TIME_WINDOW_SECONDS} s of its recording's recorded_at (A9)"
                ));
            }
            self.recent_proposal_ids.insert(id);
        }
        if event.actor.as_deref() != Some(&recorded.signature.key_id) {
            return Err("the actor is not the proposer who signed (C13)".into());
        }
        let mut chain = self.chain_at(event);
        let rolled = check_recorded_parsed(
            governance,
            &recorded,
            &mut chain,
            DrawsFrom::Book(&self.layers),
            roll,
            verified,
        )
        .map_err(|r| {
            format!(
                "proposal {}: {r} ({})",
                recorded.terms.proposal_id,
                check_of(&r, "A2")
            )
        })?;
        self.keep_bound_heads(event, chain.deferred, chain.highest_bound);
        // A15 at the recording's own chain time (the rules above judged its creation time).
        if let Some(proposer) = governance.set.by_key_id(&recorded.signature.key_id) {
            proposer
                .check_valid_at(at, "proposal")
                .map_err(|r| format!("proposal {}: {r} (A15)", recorded.terms.proposal_id))?;
        }
        let mut state = ProposalState::from_recorded(recorded, event).map_err(|r| r.to_string())?;
        if state.created_at > at {
            return Err(format!(
                "proposal {} was created after it was recorded (A2)",
                state.recorded.terms.proposal_id
            ));
        }
        if at > state.expires_at {
            return Err(format!(
                "proposal {} was recorded after its own expiry {} (A2)",
                state.recorded.terms.proposal_id, state.recorded.terms.expires_at
            ));
        }
        let skew = Duration::seconds(i64::from(governance.policy.timing.clock_skew_max_seconds));
        if at - state.created_at > skew {
            return Err(format!(
                "proposal {} was created at {}, more than {} s before it was recorded (T2)",
                state.recorded.terms.proposal_id,
                state.recorded.terms.created_at,
                skew.num_seconds()
            ));
        }
        if let Some(proposal) = &rolled {
            state.body_terms = Some(BodyTerms::of(proposal));
            self.layers
                .record(&state, proposal, governance, at)
                .map_err(|conflict| {
                    format!(
                        "proposal {}: {conflict} (A12)",
                        state.recorded.terms.proposal_id
                    )
                })?;
        }
        if state.status == Status::Failed {
            *self.closed.entry("failed".into()).or_default() += 1;
        } else {
            self.recent_hashes.opened(event.seq, state.expires_at);
            let id = state.recorded.terms.proposal_id.clone();
            self.open_index.insert(id.clone(), OpenEntry::of(&state));
            self.open.insert(id, state);
        }
        Ok(())
    }

    /// After `event`'s signature was checked: keeps the heads it binds that only the caller
    /// can check, and moves `signed_through` to the latest head it binds.
    fn keep_bound_heads(&mut self, event: &StoredEvent, deferred: Vec<ChainHead>, highest: u64) {
        self.deferred_heads
            .extend(deferred.into_iter().map(|head| (event.seq, head)));
        self.signed_through = self.signed_through.max(highest);
    }

    /// Check C13: a commit, an adoption or an expiry after it carries the actor of the
    /// signature that decided them.
    fn check_deciding_actor(&self, event: &StoredEvent) -> Result<(), String> {
        if event.actor.is_none() || event.actor != self.deciding_actor {
            return Err(format!(
                "the actor of {} is {:?}, not the key id of the signature that decided it ({}) (C13)",
                event.event_type,
                event.actor,
                self.deciding_actor.as_deref().unwrap_or("none")
            ));
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
            if self.open_index.contains_key(proposal_id) {
                // A resumed auditor's caller loads what `saved_wanted` names before the push.
                return format!(
                    "proposal {proposal_id} is open but its saved state was not loaded"
                );
            }
            format!(
                "event for proposal {proposal_id}, which is unknown or already closed (A3 to A6)"
            )
        })?;
        if event.stream_version != state.stream_version + 1 {
            return Err(format!(
                "stream version {}, expected {} (C10)",
                event.stream_version,
                state.stream_version + 1
            ));
        }
        Ok(())
    }

    /// Applies `payload` to its open proposal; returns the proposal's state when it closed.
    fn evolve(&mut self, payload: &Event, event: &StoredEvent) -> Option<ProposalState> {
        let id = payload.stream_id().to_string();
        let state = self.open.get_mut(&id)?;
        state.evolve(payload, event);
        if state.status == Status::Pending {
            return None;
        }
        if state.status == Status::Committed {
            self.layers.committed(state.id);
        } else {
            self.layers.closed(state.id);
        }
        *self.closed.entry(state.status.as_str().into()).or_default() += 1;
        self.recent_hashes.closed(state.first_seq);
        self.open_index.remove(&id);
        self.open.remove(&id)
    }

    /// `roll.executed`: checked as `execute` checked it (A13), and its amounts and status
    /// exactly those its fills decide (A14).
    fn execute(
        &mut self,
        governance: &Governance,
        event: &StoredEvent,
        executed: &RollExecuted,
        payload: &Event,
        at: DateTime<Utc>,
        verified: &VerifiedSignatures,
    ) -> Result<(), String> {
        let id = &executed.proposal_id;
        let roll = self.committed_roll(id).ok_or_else(|| {
            format!("execution of proposal {id}, which is not a committed roll, or whose executions closed {EXECUTION_GRACE_DAYS} days after its window (A13)")
        })?;
        let expected_version = u64::from(roll.stream_version) + 1;
        if event.stream_version != expected_version {
            return Err(format!(
                "stream version {}, expected {expected_version} (C10)",
                event.stream_version,
            ));
        }
        if event.actor.as_deref() != Some(&executed.signature.key_id) {
            return Err("the actor is not the signer of the execution (C13)".into());
        }
        let mut chain = self.chain_at(event);
        let request = ExecutionRequest {
            fills: executed.fills.clone(),
            corrects: executed.corrects.clone(),
        };
        let expected = decide_execute_trusting(
            governance,
            roll,
            request,
            executed.signature.clone(),
            at,
            &mut chain,
            verified,
        )
        .map_err(|r| format!("execution of proposal {id}: {r} ({})", check_of(&r, "A13")))?;
        let (deferred, highest_bound) = (chain.deferred, chain.highest_bound);
        let proposal_id = roll.proposal_id;
        if &expected != payload {
            return Err(format!(
                "the execution of proposal {id} records other amounts, status or breaches than its fills decide (A14)"
            ));
        }
        self.keep_bound_heads(event, deferred, highest_bound);
        let roll = self.committed.get_mut(&proposal_id).expect("found above");
        self.touched_rolls.insert(proposal_id);
        let before = roll.status;
        roll.evolve(executed, event)
            .map_err(|r| format!("execution of proposal {id}: {r} (C10)"))?;
        let after = roll.status;
        if before != after {
            if let Some(count) = self.closed.get_mut(before.as_str()) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.closed.remove(before.as_str());
                }
            }
            *self.closed.entry(after.as_str().into()).or_default() += 1;
        }
        self.executions += 1;
        self.execution_breaches += u64::from(!executed.breaches.is_empty());
        Ok(())
    }

    /// Forgets the committed rolls whose recording deadline passed: no valid execution of them
    /// can follow (A13), so memory holds only the rolls whose executions may still come.
    fn forget_closed_executions(&mut self, at: DateTime<Utc>) {
        self.committed.forget_deadlines_before(at);
    }

    fn evict(&mut self, at: DateTime<Utc>) {
        // Bounded work: a sweep runs only when the map has doubled since the last one left it.
        if self.open_index.len() < self.sweep_at_open || !self.due.is_empty() {
            return;
        }
        let cutoff = at - Duration::hours(EXPIRED_EVICTION_GRACE_HOURS);
        let before = self.open_index.len();
        let (recent_hashes, layers, open) =
            (&mut self.recent_hashes, &mut self.layers, &mut self.open);
        self.open_index.retain(|id, entry| {
            let keep = entry.expires_at >= cutoff;
            if !keep {
                recent_hashes.closed(entry.first_seq);
                if let Ok(id) = uuid::Uuid::parse_str(id) {
                    layers.closed(id);
                }
                open.remove(id);
            }
            keep
        });
        *self.closed.entry("expired".into()).or_default() +=
            (before - self.open_index.len()) as u64;
        self.sweep_at_open = (2 * self.open_index.len()).max(SWEEP_OPEN_MIN);
    }

    /// Whether the history so far may end here: nothing its last event decided is still due.
    pub fn check_complete(&self) -> Result<(), AuditFailure> {
        match self.due.front() {
            Some(due) => Err(AuditFailure {
                seq: self.chain.events_verified(),
                reason: format!(
                    "the ledger ends before the {} its last signature decided (A10)",
                    due.event_type()
                ),
            }),
            None => Ok(()),
        }
    }

    /// Ends the walk: nothing may still be due, and the summary of what was verified. For an
    /// auditor that walked from genesis, which holds every open proposal's state (a resumed one
    /// holds those its events named).
    pub fn finish(self) -> Result<AuditSummary, AuditFailure> {
        debug_assert_eq!(self.open.len(), self.open_index.len());
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
                .entry(state.status_under(now, &governance).as_str().into())
                .or_default() += 1;
        }
        Ok(AuditSummary {
            ledger_id: self.ledger_id.map(|id| id.to_string()).unwrap_or_default(),
            events: last_seq,
            head_hash: to_hex(&self.chain.head_hash()),
            merkle_root: to_hex(&self.merkle.root()),
            proposals,
            signatures: self.signatures,
            executions: self.executions,
            execution_breaches: self.execution_breaches,
            signer_set_version: governance.set.version,
            signers: governance.set.names(),
            signer_key_ids: governance
                .set
                .signers
                .iter()
                .map(|s| s.key_id.clone())
                .collect(),
            threshold: governance.set.threshold,
            policy_version: governance.policy_version,
            policy_hash: governance.policy_hash,
            genesis_hash: self.genesis_hash.map(|h| to_hex(&h)).unwrap_or_default(),
            signed_through_seq: self.signed_through,
        })
    }
}

/// Saved state a resumed auditor loads before an event that needs it (`saved_wanted`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    /// A closed layer (A12).
    Layer(LayerKey),
    /// A committed roll, by proposal id (A13, A14).
    Roll(String),
    /// An open proposal, by id: the one a signature or a closing acts on.
    Open(String),
}

/// The check a refusal of a signed event breaks: A11 when the signature binds a head that is
/// not the chain's, else the rule of its event type (`default`).
fn check_of(refusal: &Refusal, default: &'static str) -> &'static str {
    match refusal {
        Refusal::Misbound {
            mismatch: Mismatch::HeadOutOfRange { .. } | Mismatch::HeadHash { .. },
            ..
        } => "A11",
        Refusal::SigningTimeMalformed { .. }
        | Refusal::SignedAfterExpiry { .. }
        | Refusal::SigningTimeOutsideLife { .. } => "T3",
        Refusal::Layer(_) => "A12",
        Refusal::KeyNotValidAt { .. } => "A15",
        _ => default,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::envelope::uuid_v7_at;
    use chrono::TimeZone;

    /// A committed roll's record is kept until its recording deadline and forgotten after it,
    /// in deadline order: memory follows the rolls whose executions may still come.
    #[test]
    fn committed_rolls_are_forgotten_after_their_recording_deadline() {
        use crate::domain::execution::{ApprovedTerms, Executions, EXECUTION_RECORDING_GRACE_DAYS};
        let window_end = |day: u32| Utc.with_ymd_and_hms(2026, 5, day, 15, 15, 0).unwrap();
        let mut auditor = Auditor::new(Utc::now());
        let id_of_day: BTreeMap<u32, uuid::Uuid> = [7, 8, 9]
            .into_iter()
            .map(|day| (day, uuid_v7_at(window_end(day))))
            .collect();
        for day in [7, 9, 8] {
            let roll = ExecutableRoll {
                proposal_id: id_of_day[&day],
                subject_digest: [0; 32],
                approved: ApprovedTerms {
                    contracts: 9,
                    premium_usd: 2.95,
                    execute_after: window_end(day) - Duration::minutes(30),
                    execute_before: window_end(day),
                    quote_deviation_max: 0.25,
                },
                status: Status::Committed,
                stream_version: 3,
                executions: Executions::default(),
            };
            auditor.committed.insert(roll).unwrap();
        }
        let grace = Duration::days(EXECUTION_RECORDING_GRACE_DAYS);
        auditor.forget_closed_executions(window_end(7) + grace);
        assert_eq!(
            auditor.committed.len(),
            3,
            "a deadline reached is not passed"
        );
        auditor.forget_closed_executions(window_end(8) + grace + Duration::seconds(1));
        assert_eq!(auditor.committed.ids(), [id_of_day[&9]]);
        assert_eq!(auditor.committed.len(), 1);
    }

    /// A committed roll saved by an earlier version (a row of a client's saved state) loads,
    /// is found by its id's text, and is saved back byte for byte.
    #[test]
    fn a_committed_roll_saved_by_an_earlier_version_loads() {
        let id = "01a1acc7-96f6-7607-bb8e-cfdeb7bdad28";
        let saved = r#"{"proposal_id":"01a1acc7-96f6-7607-bb8e-cfdeb7bdad28","subject_digest":[94,44,31,26,116,111,223,91,240,173,51,130,158,15,4,22,5,245,3,92,5,172,158,174,199,75,90,129,228,30,165,45],"approved":{"contracts":9,"premium_usd":2.95,"execute_after":"2026-11-05T17:40:23.894150418Z","execute_before":"2026-11-05T18:10:23.894150418Z","quote_deviation_max":0.25},"status":"Committed","stream_version":4,"executions":[]}"#;
        let mut auditor = Auditor::new(Utc::now());
        auditor.load_roll(id, saved.as_bytes()).unwrap();
        let roll = auditor.committed_roll(id).expect("loaded");
        assert_eq!(roll.stream_version, 4);
        assert!(
            auditor.committed_roll(&id.to_uppercase()).is_none(),
            "an id is found under its one spelling only, as when rolls were held by their text"
        );
        assert_eq!(auditor.committed.len(), 1);
        auditor.touched_rolls.insert(roll.proposal_id);
        let touched = auditor.take_touched_rolls();
        assert_eq!(touched.len(), 1);
        assert_eq!(touched[0].0, id);
        assert_eq!(String::from_utf8_lossy(&touched[0].1), saved);
    }

    /// Ids are remembered while an event could still carry them, and only that long: memory
    /// follows the window, not the number of ids ever seen.
    #[test]
    fn recent_ids_are_forgotten_once_no_event_can_carry_them() {
        let start = Utc.with_ymd_and_hms(2026, 5, 7, 14, 40, 0).unwrap();
        let window = Duration::seconds(ID_TIME_WINDOW_SECONDS);
        let mut recent = RecentIds::default();
        let first = uuid_v7_at(start);
        assert!(recent.insert(first));
        assert!(!recent.insert(first), "a second sighting is refused");
        for second in 1..=3 * ID_TIME_WINDOW_SECONDS {
            let now = start + Duration::seconds(second);
            recent.forget_expired(now);
            assert_eq!(recent.contains(first), now <= start + window, "at {now}");
            assert!(recent.insert(uuid_v7_at(now)));
        }
        // One id a second, each kept for one window past its time.
        assert_eq!(recent.ids.len(), ID_TIME_WINDOW_SECONDS as usize + 1);
        assert_eq!(recent.in_order_seen.len(), recent.ids.len());
    }
}
