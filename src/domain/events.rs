//! The typed payloads of ledger events. Each payload is serialized to JSON exactly once, when
//! the event is made; the stored bytes are what is hashed, and readers parse them strictly
//! (unknown keys refused) but never re-serialize them to check anything.

use serde::{Deserialize, Serialize};

/// Schema version of every payload defined here.
pub const SCHEMA_VERSION: u32 = 1;
/// The stream holding the genesis event.
pub const LEDGER_STREAM: &str = "ledger";
/// The `format` of a genesis event written by this version.
pub const LEDGER_FORMAT: &str = "rollbook/v4";

/// One signer of a signer set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerEntry {
    pub name: String,
    pub role: Option<String>,
    /// Raw ed25519 public key, 32 bytes as lowercase hex.
    pub public_key: String,
    /// `SHA256:...` fingerprint, as `ssh-keygen -lf` shows it.
    pub key_id: String,
    /// The key signs for nothing before this time (canonical timestamp), as ssh's
    /// allowed_signers `valid-after`. Absent: no lower bound, and absent from the JSON, so a set
    /// without lifetimes keeps the bytes it always had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_after: Option<String>,
    /// The key signs for nothing from this time on (canonical timestamp), as `valid-before`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_before: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerSet {
    pub version: u64,
    pub threshold: u32,
    pub signers: Vec<SignerEntry>,
}

/// A signature with the exact message bytes it signs (the DSSE idea: verify these bytes first,
/// then parse them; never rebuild them from parsed values to check).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureEnvelope {
    pub key_id: String,
    /// The signed message, lowercase hex (see docs/audit-format.md, "Signed messages").
    pub message: String,
    /// The 64-byte ed25519 signature, lowercase hex.
    pub signature: String,
}

/// What a proposal asks the signers to approve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalKind {
    /// A roll of hedge profit into the next layer; `body` is the proposal TOML.
    Roll,
    /// Governance: the complete next signer set; `body` is its JSON.
    SignerSet,
    /// Governance: the complete next policy; `body` is its canonical JSON.
    Policy,
}

impl ProposalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalKind::Roll => "roll",
            ProposalKind::SignerSet => "signer_set",
            ProposalKind::Policy => "policy",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerCreated {
    pub format: String,
    /// The first signer set's JSON (a [`SignerSet`]), exactly as signed.
    pub signer_set_json: String,
    pub policy_version: u64,
    /// The effective policy's canonical JSON, exactly as hashed into `policy_hash`.
    pub policy_json: String,
    pub policy_hash: String,
    pub signature: SignatureEnvelope,
}

/// What a proposal binds before it is signed: the draft its proposer signs and, with the
/// subject digest and that signature, the `proposal.recorded` payload (flattened there, so the
/// payload's JSON keys and their order are these fields, then `subject_digest`, `signature`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalTerms {
    pub proposal_id: String,
    pub kind: ProposalKind,
    /// The proposal text exactly as digested (TOML for a roll, JSON for governance).
    pub body: String,
    /// The sizing report JSON exactly as digested (rolls only).
    pub report_json: Option<String>,
    /// `pass` or `fail` for a roll; absent for governance.
    pub verdict: Option<String>,
    pub contracts_requested: Option<u32>,
    pub policy_version: u64,
    pub policy_hash: String,
    pub signer_set_version: u64,
    /// The hash of that signer set (`signer_set_hash`, lowercase hex). Digested, so a signature
    /// binds the set it was asked under, not only its number: an offline signer checks the set
    /// it is shown against it.
    pub signer_set_hash: String,
    pub created_at: String,
    pub expires_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalRecorded {
    #[serde(flatten)]
    pub terms: ProposalTerms,
    /// SHA-256 of the subject (docs/audit-format.md), lowercase hex; what every signature binds.
    pub subject_digest: String,
    pub signature: SignatureEnvelope,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalSigned {
    pub proposal_id: String,
    pub signature: SignatureEnvelope,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalCommitted {
    pub proposal_id: String,
    /// Key ids of the distinct signers counted toward the threshold, in signing order.
    pub counted_signers: Vec<String>,
    pub signer_set_version: u64,
    pub threshold: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalRejected {
    pub proposal_id: String,
    pub reason: String,
    pub signature: SignatureEnvelope,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalWithdrawn {
    pub proposal_id: String,
    pub signature: SignatureEnvelope,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalExpired {
    pub proposal_id: String,
    /// `ttl`, `signer_set_changed` or `policy_changed`.
    pub reason: String,
}

/// A governance motion committed: the next signer set is in force from the next event on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerSetAdopted {
    pub motion_id: String,
    pub signer_set_version: u64,
    /// Identical to the motion's body.
    pub signer_set_json: String,
}

/// A governance motion committed: the next policy is in force from the next event on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyAdopted {
    pub motion_id: String,
    pub policy_version: u64,
    /// Identical to the motion's body.
    pub policy_json: String,
    pub policy_hash: String,
}

/// One fill of a roll's execution, as recorded: `at` in canonical form, the price in USD per
/// contract unit, as the next layer's `premium_usd` is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fill {
    pub contracts: u32,
    pub price_usd: f64,
    pub at: String,
    pub broker_ref: String,
}

/// A committed roll's fills recorded by a signer (`rollbook execute`), with what they amount
/// to: every field after `corrects` is re-derived by `decide_execute` (and by the verifier).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollExecuted {
    pub proposal_id: String,
    pub fills: Vec<Fill>,
    /// Event ids of earlier executions of this roll that this one replaces (their fills no
    /// longer count); empty for new fills.
    pub corrects: Vec<String>,
    /// Contracts filled in all, counting every execution not corrected, this one included.
    pub filled_contracts: u64,
    /// The roll's status after this execution: `committed` (partially executed), `executed`
    /// or `execution_breach`.
    pub status: String,
    /// What this execution breaks (empty when it is within the approved bounds).
    pub breaches: Vec<String>,
    pub signature: SignatureEnvelope,
}

/// Every event payload rollbook writes. (Its serde form is for saved verifier state only; a
/// payload's bytes are its variant's own serialization, `to_payload`.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    LedgerCreated(LedgerCreated),
    ProposalRecorded(ProposalRecorded),
    ProposalSigned(ProposalSigned),
    ProposalCommitted(ProposalCommitted),
    ProposalRejected(ProposalRejected),
    ProposalWithdrawn(ProposalWithdrawn),
    ProposalExpired(ProposalExpired),
    SignerSetAdopted(SignerSetAdopted),
    PolicyAdopted(PolicyAdopted),
    RollExecuted(RollExecuted),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("event type {event_type} has schema version {found}; this rollbook reads version {SCHEMA_VERSION}")]
    SchemaVersion { event_type: String, found: u32 },
    #[error("payload of {event_type} is not valid: {reason}")]
    Malformed { event_type: String, reason: String },
}

impl Event {
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::LedgerCreated(_) => "ledger.created",
            Event::ProposalRecorded(_) => "proposal.recorded",
            Event::ProposalSigned(_) => "proposal.signed",
            Event::ProposalCommitted(_) => "proposal.committed",
            Event::ProposalRejected(_) => "proposal.rejected",
            Event::ProposalWithdrawn(_) => "proposal.withdrawn",
            Event::ProposalExpired(_) => "proposal.expired",
            Event::SignerSetAdopted(_) => "ledger.signer_set_adopted",
            Event::PolicyAdopted(_) => "ledger.policy_adopted",
            Event::RollExecuted(_) => "roll.executed",
        }
    }

    /// The JSON bytes written once and stored verbatim.
    pub fn to_payload(&self) -> Vec<u8> {
        // serde_json::to_vec's starting capacity.
        let mut bytes = Vec::with_capacity(128);
        self.write_payload(&mut bytes);
        bytes
    }

    /// Whether `stored` is exactly what `to_payload` writes for this event (check C11). Written
    /// into a buffer of `stored`'s size: a recording's payload is kilobytes, which a growing
    /// buffer copies at each doubling, and a verifier checks every payload.
    pub fn is_payload(&self, stored: &[u8]) -> bool {
        let mut bytes = Vec::with_capacity(stored.len());
        self.write_payload(&mut bytes);
        bytes == stored
    }

    fn write_payload(&self, out: &mut Vec<u8>) {
        let result = match self {
            Event::LedgerCreated(p) => serde_json::to_writer(out, p),
            Event::ProposalRecorded(p) => serde_json::to_writer(out, p),
            Event::ProposalSigned(p) => serde_json::to_writer(out, p),
            Event::ProposalCommitted(p) => serde_json::to_writer(out, p),
            Event::ProposalRejected(p) => serde_json::to_writer(out, p),
            Event::ProposalWithdrawn(p) => serde_json::to_writer(out, p),
            Event::ProposalExpired(p) => serde_json::to_writer(out, p),
            Event::SignerSetAdopted(p) => serde_json::to_writer(out, p),
            Event::PolicyAdopted(p) => serde_json::to_writer(out, p),
            Event::RollExecuted(p) => serde_json::to_writer(out, p),
        };
        result.expect("event payloads are plain data and always serialize")
    }

    pub fn from_payload(
        event_type: &str,
        schema_version: u32,
        payload: &[u8],
    ) -> Result<Event, PayloadError> {
        fn parse<T: serde::de::DeserializeOwned>(
            event_type: &str,
            payload: &[u8],
        ) -> Result<T, PayloadError> {
            serde_json::from_slice(payload).map_err(|error| PayloadError::Malformed {
                event_type: event_type.to_string(),
                reason: error.to_string(),
            })
        }
        let known = [
            "ledger.created",
            "proposal.recorded",
            "proposal.signed",
            "proposal.committed",
            "proposal.rejected",
            "proposal.withdrawn",
            "proposal.expired",
            "ledger.signer_set_adopted",
            "ledger.policy_adopted",
            "roll.executed",
        ];
        if !known.contains(&event_type) {
            return Err(PayloadError::UnknownType(event_type.to_string()));
        }
        if schema_version != SCHEMA_VERSION {
            return Err(PayloadError::SchemaVersion {
                event_type: event_type.to_string(),
                found: schema_version,
            });
        }
        Ok(match event_type {
            "ledger.created" => Event::LedgerCreated(parse(event_type, payload)?),
            "proposal.recorded" => Event::ProposalRecorded(parse(event_type, payload)?),
            "proposal.signed" => Event::ProposalSigned(parse(event_type, payload)?),
            "proposal.committed" => Event::ProposalCommitted(parse(event_type, payload)?),
            "proposal.rejected" => Event::ProposalRejected(parse(event_type, payload)?),
            "proposal.withdrawn" => Event::ProposalWithdrawn(parse(event_type, payload)?),
            "proposal.expired" => Event::ProposalExpired(parse(event_type, payload)?),
            "ledger.signer_set_adopted" => Event::SignerSetAdopted(parse(event_type, payload)?),
            "roll.executed" => Event::RollExecuted(parse(event_type, payload)?),
            _ => Event::PolicyAdopted(parse(event_type, payload)?),
        })
    }

    /// The signature an event carries (commits, expiries and adoptions carry none).
    pub fn signature(&self) -> Option<&SignatureEnvelope> {
        match self {
            Event::LedgerCreated(p) => Some(&p.signature),
            Event::ProposalRecorded(p) => Some(&p.signature),
            Event::ProposalSigned(p) => Some(&p.signature),
            Event::ProposalRejected(p) => Some(&p.signature),
            Event::ProposalWithdrawn(p) => Some(&p.signature),
            Event::RollExecuted(p) => Some(&p.signature),
            Event::ProposalCommitted(_)
            | Event::ProposalExpired(_)
            | Event::SignerSetAdopted(_)
            | Event::PolicyAdopted(_) => None,
        }
    }

    /// A signer set's JSON the event carries: the genesis set, a proposed one, an adopted one.
    pub fn signer_set_json(&self) -> Option<&str> {
        match self {
            Event::LedgerCreated(p) => Some(&p.signer_set_json),
            Event::ProposalRecorded(p) if p.terms.kind == ProposalKind::SignerSet => {
                Some(&p.terms.body)
            }
            Event::SignerSetAdopted(p) => Some(&p.signer_set_json),
            _ => None,
        }
    }

    /// The stream an event belongs to: the proposal it concerns, or the ledger itself.
    pub fn stream_id(&self) -> &str {
        match self {
            Event::LedgerCreated(_) | Event::SignerSetAdopted(_) | Event::PolicyAdopted(_) => {
                LEDGER_STREAM
            }
            Event::ProposalRecorded(p) => &p.terms.proposal_id,
            Event::ProposalSigned(p) => &p.proposal_id,
            Event::ProposalCommitted(p) => &p.proposal_id,
            Event::ProposalRejected(p) => &p.proposal_id,
            Event::ProposalWithdrawn(p) => &p.proposal_id,
            Event::ProposalExpired(p) => &p.proposal_id,
            Event::RollExecuted(p) => &p.proposal_id,
        }
    }
}
