//! Why the ledger's rules refuse a command, or why a recorded event is invalid on replay. Each
//! variant carries what the rule found; its text is what the CLI prints.

use uuid::Uuid;

use super::events::{PayloadError, LEDGER_FORMAT};
use super::governance::{NAME_BYTES_MAX, SIGNERS_MAX};
use super::proposal::Status;
use crate::crypto::canonical::{Purpose, REASON_BYTES_MAX};
use crate::sizing::InputError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    // ---- signer sets ----
    #[error("the signer set is not valid JSON for a signer set: {reason}")]
    SignerSetJson { reason: String },
    #[error("a signer set has 1 to {SIGNERS_MAX} signers, this one has {signers}")]
    SignerCount { signers: usize },
    #[error("threshold must be between 1 and the number of signers ({signers}), got {threshold}")]
    Threshold { threshold: u32, signers: usize },
    #[error("signer set versions start at 1")]
    SignerSetVersionZero,
    #[error("signer name {name:?} must be 1 to {NAME_BYTES_MAX} bytes of printable text without surrounding spaces")]
    SignerName { name: String },
    #[error("signer {name}: role must be at most {NAME_BYTES_MAX} bytes of printable text")]
    SignerRole { name: String },
    #[error("signer {name}: public_key must be 32 bytes of hex")]
    SignerKeyNotHex { name: String },
    /// A weak (small-order) or non-canonical key, in the key check's words.
    #[error("signer {name}: {reason}")]
    SignerKey { name: String, reason: String },
    #[error("signer {name}: key_id {key_id} does not match the public key ({computed})")]
    SignerKeyId {
        name: String,
        key_id: String,
        computed: String,
    },
    #[error("duplicate signer name: {first} and {second}")]
    DuplicateSignerName { first: String, second: String },
    #[error("signers {first} and {second} have the same public key")]
    DuplicateSignerKey { first: String, second: String },
    #[error("signer {name}: {reason}")]
    SignerLifetime { name: String, reason: String },
    #[error(
        "only {valid} key(s) of this signer set are valid at {at} ({}), fewer than its threshold {threshold}: the ledger could not decide anything",
        if .valid_names.is_empty() { "none".to_string() } else { .valid_names.join(", ") }
    )]
    TooFewValidKeys {
        valid: usize,
        valid_names: Vec<String>,
        threshold: u32,
        at: String,
    },
    /// A signature by a key outside its lifetime counts for nothing (check A15).
    #[error(
        "the key {key_id} of {name} is valid {window}; a {action} at {at} by it counts for nothing"
    )]
    KeyNotValidAt {
        name: String,
        key_id: String,
        window: String,
        at: String,
        action: &'static str,
    },

    #[error("the signer's key lapsed at {valid_before} (its valid_before) before this could be recorded (ledger time {recorded_at}): a signature after it counts for nothing (check A15), so nothing was written")]
    KeyLapsedBeforeRecorded {
        valid_before: String,
        recorded_at: String,
    },

    // ---- signatures ----
    #[error("signature of {key_id}: the message is not hex")]
    MessageNotHex { key_id: String },
    #[error("signature of {key_id}: not 64 bytes of hex")]
    SignatureNotHex { key_id: String },
    #[error("signature of {key_id} does not verify (strict ed25519)")]
    SignatureInvalid { key_id: String },
    /// A signed message that is not one of the layouts in docs/audit-format.md.
    #[error("{reason}")]
    MessageMalformed { reason: String },
    #[error("{key_id} presented {mismatch}")]
    Misbound { key_id: String, mismatch: Mismatch },

    // ---- genesis and the ledger stream ----
    #[error("the ledger is format {format:?}; this build of rollbook reads {LEDGER_FORMAT:?} only (verify it with the release that wrote it: docs/audit-format.md, \"Format versions\")")]
    GenesisFormat { format: String },
    #[error("the genesis signer set must be version 1, got {version}")]
    GenesisSetVersion { version: u64 },
    #[error("the genesis policy must be version 1")]
    GenesisPolicyVersion,
    #[error("genesis policy: {source}")]
    GenesisPolicy { source: InputError },
    #[error("genesis policy_json is not in canonical form")]
    GenesisPolicyNotCanonical,
    #[error("genesis policy_hash {stored} does not match the policy ({computed})")]
    GenesisPolicyHash { stored: String, computed: String },
    #[error("the ledger's creator {key_id} must be in its signer set")]
    CreatorNotInSet { key_id: String },
    #[error("the genesis signature signs a different ledger, signer set or policy")]
    GenesisMessage,
    #[error("signer set v{adopted} adopted while v{in_force} is in force")]
    SignerSetAdoptedOutOfTurn { adopted: u64, in_force: u64 },
    #[error("adopted policy: {source}")]
    AdoptedPolicy { source: InputError },
    #[error("adopted policy is not canonical or its hash does not match")]
    AdoptedPolicyNotCanonical,
    #[error("policy v{adopted} adopted while v{in_force} is in force")]
    PolicyAdoptedOutOfTurn { adopted: u64, in_force: u64 },
    #[error("{event_type} does not belong in the ledger stream")]
    NotInLedgerStream { event_type: &'static str },
    #[error("the ledger has no genesis event")]
    NoGenesis,
    #[error("seq {seq}: the ledger stream does not start with ledger.created")]
    LedgerStreamStart { seq: u64 },

    // ---- a proposal's stream ----
    #[error("no such proposal")]
    NoSuchProposal,
    #[error("stream {stream_id} does not start with proposal.recorded")]
    ProposalStreamStart { stream_id: String },
    #[error("proposal id {proposal_id:?} is not a UUID")]
    ProposalIdNotUuid { proposal_id: String },
    /// Signatures bind the id's 16 bytes, so a second spelling of one id would be a second
    /// stream that the same signatures verify for: one spelling only.
    #[error("proposal id {proposal_id:?} is not in canonical form (lowercase, hyphenated)")]
    ProposalIdNotCanonical { proposal_id: String },
    /// A recorded timestamp that is not in the canonical form, with its text.
    #[error("{field} {text:?} is not canonical")]
    RecordedTimestamp { field: &'static str, text: String },
    #[error("subject_digest is not 32 bytes of hex")]
    SubjectDigestNotHex,
    #[error("seq {seq}: {source}")]
    Payload { seq: u64, source: PayloadError },
    /// Another refusal, about the event at `seq`.
    #[error("seq {seq}: {source}")]
    AtSeq { seq: u64, source: Box<Refusal> },
    #[error("bad timestamp")]
    BadTimestamp,

    // ---- a recording (propose, and its replay) ----
    #[error("proposal is bound to signer set v{bound}, but v{in_force} is in force")]
    SignerSetNotInForce { bound: u64, in_force: u64 },
    #[error("proposal is bound to a signer set with hash {bound_hash}, but the set in force hashes to {in_force_hash}")]
    SignerSetHashNotInForce {
        bound_hash: String,
        in_force_hash: String,
    },
    #[error("proposal is bound to policy v{bound_version} ({bound_hash}), but v{in_force_version} ({in_force_hash}) is in force")]
    PolicyNotInForce {
        bound_version: u64,
        bound_hash: String,
        in_force_version: u64,
        in_force_hash: String,
    },
    /// A draft's or recording's timestamp that is not in the canonical form.
    #[error("{field} is not canonical")]
    TimestampNotCanonical { field: &'static str },
    #[error("expires_at is not created_at + the policy's {ttl_seconds} s time to live")]
    ExpiryNotTtl { ttl_seconds: u64 },
    #[error("subject_digest does not match the proposal's content")]
    SubjectDigestMismatch,
    #[error("the proposer {key_id} is not in signer set v{set_version} ({})", .names.join(", "))]
    ProposerNotInSet {
        key_id: String,
        set_version: u64,
        names: Vec<String>,
    },
    #[error("a roll carries its sizing report")]
    RollWithoutReport,
    #[error("the stored sizing report does not parse: {reason}")]
    ReportUnparsable { reason: String },
    #[error("the proposal body is invalid: {reason}")]
    BodyInvalid { reason: String },
    #[error("the stored sizing report differs from a fresh evaluation: {difference}")]
    ReportDiffers { difference: String },
    /// A roll may not draw on the closed layer it names (A12).
    #[error("{0} (A12)")]
    Layer(crate::domain::layers::LayerConflict),
    #[error("the recorded verdict or contracts differ from the sizing report")]
    VerdictDiffers,
    #[error("a governance motion carries no sizing report")]
    MotionWithReport,
    #[error("the next signer set must be version {expected}, got {found}")]
    NextSetVersion { expected: u64, found: u64 },
    #[error("the proposed signer set is identical to the one in force")]
    SameSignerSet,
    /// A set motion that removes or rotates signers needs co-signers who stay besides the
    /// proposer (`staying`: how many would).
    #[error("the next signer set removes or rotates {}; such a motion needs co-signatures from {needed} signer(s) who stay besides the proposer, and {staying} would stay: remove or rotate fewer signers per motion", .departing.join(", "))]
    TooFewSignersStay {
        departing: Vec<String>,
        staying: usize,
        needed: usize,
    },
    #[error("the proposed policy: {source}")]
    ProposedPolicy { source: InputError },
    #[error("the proposed policy is not in canonical form")]
    ProposedPolicyNotCanonical,
    #[error("the proposed policy is identical to the one in force")]
    SamePolicy,

    // ---- sign, reject, withdraw ----
    #[error(
        "cannot {action} proposal {proposal_id}: it expired at {expires_at}; propose it again"
    )]
    Expired {
        action: &'static str,
        proposal_id: Uuid,
        expires_at: String,
    },
    #[error("cannot {action} proposal {proposal_id}: {}", .status.why_final())]
    Closed {
        action: &'static str,
        proposal_id: Uuid,
        status: Status,
    },
    #[error("proposal {proposal_id} expired when signer set v{signer_set_version} or policy v{policy_version}, which it is bound to, was replaced; propose it again")]
    GovernanceNotInForce {
        proposal_id: Uuid,
        signer_set_version: u64,
        policy_version: u64,
    },
    /// `action`: `sign` or `veto`.
    #[error("{key_id} is not in signer set v{set_version} ({}); only its signers may {action}", .names.join(", "))]
    NotASigner {
        key_id: String,
        set_version: u64,
        names: Vec<String>,
        action: &'static str,
    },
    #[error("{name} proposed {proposal_id} and has signed it already; {}", if *.proposer_counts { "that signature counts" } else { "maker-checker: the proposer's signature does not count, other signers must co-sign" })]
    ProposerSignedAlready {
        name: String,
        proposal_id: Uuid,
        proposer_counts: bool,
    },
    #[error("{name} has already signed proposal {proposal_id}; a second signature is not counted")]
    SignedAlready { name: String, proposal_id: Uuid },
    #[error("a veto needs a reason of 1 to {REASON_BYTES_MAX} bytes")]
    VetoReasonLength,
    #[error("a veto reason must be printable text (no control characters or line breaks)")]
    VetoReasonNotPrintable,
    #[error("{name} is removed by motion {motion_id} and cannot veto it")]
    RemovedCannotVeto { name: String, motion_id: Uuid },
    #[error("only the proposer ({proposer}) may withdraw proposal {proposal_id}")]
    NotTheProposer { proposer: String, proposal_id: Uuid },
    #[error("the proposer {key_id} is no longer in the signer set in force")]
    ProposerLeft { key_id: String },

    // ---- stored history re-checked before a decision builds on it ----
    #[error("seq {seq}: the stored proposal is invalid: {source}")]
    StoredProposalInvalid { seq: u64, source: Box<Refusal> },
    #[error("seq {seq}: {event_type} in a pending proposal")]
    NotPending { seq: u64, event_type: &'static str },
    #[error("seq {seq}: a stored signature is invalid: {source}")]
    StoredSignatureInvalid { seq: u64, source: Box<Refusal> },
    #[error("seq {seq}: this signature completed K but no commit was recorded")]
    CommitMissing { seq: u64 },
    #[error("the adopted motion lacks its signatures and commit")]
    MotionIncomplete,
    #[error("seq {seq}: the adopted motion does not end with a signature and its commit")]
    MotionEnd { seq: u64 },
    #[error("motion {motion_id}: the adoption is not what its signatures decide")]
    AdoptionDiffers { motion_id: Uuid },

    // ---- the service's appends ----
    #[error("this database already holds ledger {ledger_id}; init is refused")]
    LedgerExists { ledger_id: Uuid },
    #[error("the proposal expired at {deadline} before this could be recorded")]
    ExpiredBeforeRecorded { deadline: String },
    #[error("the ledger's clock ({ledger_time}) is more than {window_seconds} s ahead of this machine's ({local_time}): a proposal id carries its maker's time and must lie within {window_seconds} s of its recording's (check A9), so nothing was written; check this machine's clock (and the clock of whoever wrote the last event)")]
    ChainClockAhead {
        ledger_time: String,
        local_time: String,
        window_seconds: i64,
    },
    #[error("this machine's clock ({local_time}) differs from the ledger's clock ({ledger_time}) by more than timing.clock_skew_max_seconds ({max_seconds} s): nothing was signed or written; set this machine's clock right (the ledger's is the database server's on PostgreSQL)")]
    ClockSkew {
        local_time: String,
        ledger_time: String,
        max_seconds: u32,
    },
    #[error("this machine's clock ({local_time}) is more than timing.clock_skew_max_seconds ({max_seconds} s) behind the ledger's last event ({head_time}): nothing was signed or written; set this machine's clock right, and if that event lies in the future, run `rollbook verify`")]
    ClockBehindChain {
        local_time: String,
        head_time: String,
        max_seconds: u32,
    },
    #[error("the offline signature's time {text:?} is not a canonical UTC timestamp")]
    SigningTimeMalformed { text: String },
    #[error(
        "the offline signature was made at {signed_at}, after the proposal expired at {expires_at}"
    )]
    SignedAfterExpiry {
        signed_at: String,
        expires_at: String,
    },
    #[error("the offline signature's time {signed_at} lies outside the proposal's life on the ledger's clock (created {created_at}, recorded at {recorded_at}) by more than timing.clock_skew_max_seconds ({max_seconds} s): the signing machine's clock is wrong")]
    SigningTimeOutsideLife {
        signed_at: String,
        created_at: String,
        recorded_at: String,
        max_seconds: u32,
    },
    #[error("the signer set or policy changed while proposing; run the command again")]
    GovernanceChanged,
    #[error("proposal {proposal_id} kept changing under {attempts} attempts; try again")]
    KeptChanging { proposal_id: Uuid, attempts: usize },

    // ---- executions ----
    #[error("cannot record an execution of proposal {proposal_id}: it is {what}; only a committed roll is executed")]
    NotExecutable { proposal_id: Uuid, what: String },
    #[error("cannot record an execution of proposal {proposal_id} after {deadline}: executions are recorded until {grace_days} days after its window ended (execute_before)")]
    ExecutionRecordingClosed {
        proposal_id: Uuid,
        deadline: String,
        grace_days: i64,
    },
    #[error("cannot record an execution of proposal {proposal_id}: its stream holds {} events, the most a roll's stream may hold", u32::MAX)]
    RollStreamFull { proposal_id: Uuid },
    #[error("{field} {rule}")]
    FillInvalid { field: String, rule: String },
    #[error("corrects {event_id}: {reason}")]
    CorrectionTarget { event_id: String, reason: String },
    #[error("the committed roll's proposal does not parse: {reason}")]
    ApprovedTermsUnreadable { reason: String },
}

/// What a signature on a proposal binds that differs from what it must bind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("a {} signature, not a {} signature", .found.name(), .expected.name())]
    Purpose { found: Purpose, expected: Purpose },
    #[error("a signature for ledger {found}, not this ledger ({expected})")]
    Ledger { found: Uuid, expected: Uuid },
    #[error("a signature for proposal {found}, not {expected}")]
    Proposal { found: Uuid, expected: Uuid },
    #[error("a signature under signer set v{found}, not v{expected}")]
    SignerSetVersion { found: u64, expected: u64 },
    #[error("a signature over a different proposal content (subject digest)")]
    SubjectDigest,
    #[error("a veto signature over a different reason")]
    VetoReason,
    #[error("an execute signature over other fills or corrections (execution digest)")]
    ExecutionContent,
    #[error("a signature binding the head at seq {found}, outside seq {earliest}..={head} (from the proposal's recording to the head it follows)")]
    HeadOutOfRange {
        found: u64,
        earliest: u64,
        head: u64,
    },
    #[error("a signature binding a head at seq {seq} whose hash is not the chain's: the history before it changed, or it was made on another ledger's")]
    HeadHash { seq: u64 },
}
