//! Signer sets and the governance state in force: who may sign, how many must, which policy
//! applies. Pure: built from the `ledger` stream's events (genesis and adoptions).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::envelope::{format_timestamp, parse_timestamp};
use super::events::{Event, LedgerCreated, SignerEntry, SignerSet, LEDGER_FORMAT};
use crate::crypto::canonical::{decode_signed_message, genesis_message};
use crate::crypto::keys::{PublicKey, Signature};
use crate::crypto::{from_hex, from_hex32, to_hex};
use crate::domain::events::SignatureEnvelope;
use crate::sizing::Policy;

pub use super::refusal::{Mismatch, Refusal};

/// Limit on signers per ledger: approvals are read by people, and K-of-n stays legible.
pub const SIGNERS_MAX: usize = 32;
/// Limit on a signer's name and role, in bytes.
pub const NAME_BYTES_MAX: usize = 64;

/// A signer whose key passed the strict checks.
#[derive(Debug, Clone)]
pub struct ActiveSigner {
    pub name: String,
    pub role: Option<String>,
    pub key: PublicKey,
    pub key_id: String,
    /// The key's lifetime: it signs for something at `t` only when `valid_after <= t <
    /// valid_before` (each bound optional), as ssh's allowed_signers.
    pub valid_after: Option<DateTime<Utc>>,
    pub valid_before: Option<DateTime<Utc>>,
}

impl ActiveSigner {
    /// Whether a signature by this key at `at` (the chain time of its event) counts: the one
    /// lifetime rule, for every signed act.
    pub fn valid_at(&self, at: DateTime<Utc>) -> bool {
        self.valid_after.is_none_or(|after| after <= at)
            && self.valid_before.is_none_or(|before| at < before)
    }

    /// The lifetime in words: "from A until B", "until B", "from A", or "always".
    pub fn lifetime_text(&self) -> String {
        match (self.valid_after, self.valid_before) {
            (Some(after), Some(before)) => format!(
                "from {} until {}",
                format_timestamp(after),
                format_timestamp(before)
            ),
            (None, Some(before)) => format!("until {}", format_timestamp(before)),
            (Some(after), None) => format!("from {}", format_timestamp(after)),
            (None, None) => "always".to_string(),
        }
    }

    /// Refuses (`Refusal::KeyNotValidAt`, check A15) a `action` signed by this key at `at`
    /// outside its lifetime. Every decision that takes a signature asks this.
    pub fn check_valid_at(&self, at: DateTime<Utc>, action: &'static str) -> Result<(), Refusal> {
        if self.valid_at(at) {
            return Ok(());
        }
        Err(Refusal::KeyNotValidAt {
            name: self.name.clone(),
            key_id: self.key_id.clone(),
            window: self.lifetime_text(),
            at: format_timestamp(at),
            action,
        })
    }
}

/// A lifetime bound of a signer entry: a canonical timestamp, or refused naming the field.
fn lifetime_bound(
    name: &str,
    field: &'static str,
    text: Option<&str>,
) -> Result<Option<DateTime<Utc>>, Refusal> {
    text.map(|text| {
        parse_timestamp(text).ok_or_else(|| Refusal::SignerLifetime {
            name: name.into(),
            reason: format!(
                "{field} {text:?} is not a canonical timestamp (YYYY-MM-DDTHH:MM:SS.ffffffZ)"
            ),
        })
    })
    .transpose()
}

/// A validated signer set: 1 <= K <= n <= 32, unique names, unique strong keys.
#[derive(Debug, Clone)]
pub struct ActiveSet {
    pub version: u64,
    pub threshold: u32,
    pub signers: Vec<ActiveSigner>,
}

impl ActiveSet {
    /// Parses a signer set's exact JSON text strictly and checks every invariant.
    pub fn parse(json: &str) -> Result<ActiveSet, Refusal> {
        let set: SignerSet =
            serde_json::from_str(json).map_err(|error| Refusal::SignerSetJson {
                reason: error.to_string(),
            })?;
        // Stored signer sets have one spelling (docs/audit-format.md, check C12).
        if serde_json::to_string(&set).ok().as_deref() != Some(json) {
            return Err(Refusal::SignerSetJson {
                reason: "not in canonical form (whitespace, key order or an escape differs from what rollbook writes) (C12)".into(),
            });
        }
        Self::validate(&set)
    }

    pub fn validate(set: &SignerSet) -> Result<ActiveSet, Refusal> {
        let n = set.signers.len();
        if n == 0 || n > SIGNERS_MAX {
            return Err(Refusal::SignerCount { signers: n });
        }
        if set.threshold < 1 || set.threshold as usize > n {
            return Err(Refusal::Threshold {
                threshold: set.threshold,
                signers: n,
            });
        }
        if set.version < 1 {
            return Err(Refusal::SignerSetVersionZero);
        }
        let mut signers: Vec<ActiveSigner> = Vec::with_capacity(n);
        for entry in &set.signers {
            let name = entry.name.trim();
            if name.is_empty()
                || name != entry.name
                || name.len() > NAME_BYTES_MAX
                || name.chars().any(char::is_control)
            {
                return Err(Refusal::SignerName {
                    name: entry.name.clone(),
                });
            }
            if let Some(role) = &entry.role {
                if role.len() > NAME_BYTES_MAX || role.chars().any(char::is_control) {
                    return Err(Refusal::SignerRole { name: name.into() });
                }
            }
            let raw = from_hex32(&entry.public_key)
                .map_err(|_| Refusal::SignerKeyNotHex { name: name.into() })?;
            // Refuses small-order (weak) and non-canonical encodings.
            let key = PublicKey::from_bytes_checked(&raw).map_err(|error| Refusal::SignerKey {
                name: name.into(),
                reason: error.to_string(),
            })?;
            let key_id = key.key_id().to_string();
            if key_id != entry.key_id {
                return Err(Refusal::SignerKeyId {
                    name: name.into(),
                    key_id: entry.key_id.clone(),
                    computed: key_id,
                });
            }
            if let Some(other) = signers.iter().find(|s| s.name.eq_ignore_ascii_case(name)) {
                return Err(Refusal::DuplicateSignerName {
                    first: other.name.clone(),
                    second: name.into(),
                });
            }
            if let Some(other) = signers.iter().find(|s| s.key.as_bytes() == raw) {
                return Err(Refusal::DuplicateSignerKey {
                    first: other.name.clone(),
                    second: name.into(),
                });
            }
            let valid_after = lifetime_bound(name, "valid_after", entry.valid_after.as_deref())?;
            let valid_before = lifetime_bound(name, "valid_before", entry.valid_before.as_deref())?;
            if let (Some(after), Some(before)) = (valid_after, valid_before) {
                if after >= before {
                    return Err(Refusal::SignerLifetime {
                        name: name.into(),
                        reason: "valid_after must be before valid_before".into(),
                    });
                }
            }
            signers.push(ActiveSigner {
                name: name.to_string(),
                role: entry.role.clone(),
                key,
                key_id,
                valid_after,
                valid_before,
            });
        }
        Ok(ActiveSet {
            version: set.version,
            threshold: set.threshold,
            signers,
        })
    }

    pub fn by_key_id(&self, key_id: &str) -> Option<&ActiveSigner> {
        self.signers.iter().find(|signer| signer.key_id == key_id)
    }

    pub fn by_key(&self, key: &[u8; 32]) -> Option<&ActiveSigner> {
        self.signers
            .iter()
            .find(|signer| &signer.key.as_bytes() == key)
    }

    pub fn names(&self) -> Vec<String> {
        self.signers
            .iter()
            .map(|signer| signer.name.clone())
            .collect()
    }

    /// The set as the JSON stored in the ledger (field order fixed by the struct).
    pub fn to_signer_set(&self) -> SignerSet {
        SignerSet {
            version: self.version,
            threshold: self.threshold,
            signers: self
                .signers
                .iter()
                .map(|s| SignerEntry {
                    name: s.name.clone(),
                    role: s.role.clone(),
                    public_key: to_hex(&s.key.as_bytes()),
                    key_id: s.key_id.clone(),
                    valid_after: s.valid_after.map(format_timestamp),
                    valid_before: s.valid_before.map(format_timestamp),
                })
                .collect(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.to_signer_set()).expect("signer sets serialize")
    }

    /// Same threshold and same members (name, role, key, lifetime), whatever the version.
    pub fn same_members_as(&self, other: &ActiveSet) -> bool {
        self.threshold == other.threshold
            && self.signers.len() == other.signers.len()
            && self.signers.iter().zip(&other.signers).all(|(a, b)| {
                a.name == b.name
                    && a.role == b.role
                    && a.key.as_bytes() == b.key.as_bytes()
                    && a.valid_after == b.valid_after
                    && a.valid_before == b.valid_before
            })
    }

    /// The signers whose keys are valid at `at`.
    pub fn valid_at(&self, at: DateTime<Utc>) -> Vec<&ActiveSigner> {
        self.signers.iter().filter(|s| s.valid_at(at)).collect()
    }

    /// Refuses a set with fewer than K keys valid at `at`: it could decide nothing.
    pub fn check_enough_valid_at(&self, at: DateTime<Utc>) -> Result<(), Refusal> {
        let valid = self.valid_at(at);
        if valid.len() >= self.threshold as usize {
            return Ok(());
        }
        Err(Refusal::TooFewValidKeys {
            valid: valid.len(),
            valid_names: valid.iter().map(|s| s.name.clone()).collect(),
            threshold: self.threshold,
            at: format_timestamp(at),
        })
    }

    /// A warning when the keys valid fall below K at some time in `from..=until` (now to the
    /// end of a proposal's lifetime): a set adopted then could decide nothing once they lapse,
    /// and must be renewed first. The count only drops when a key lapses, so it is read at
    /// `from`, at each `valid_before` in the window, and at `until`.
    pub fn lifetime_warning(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Option<String> {
        let lapses = self
            .signers
            .iter()
            .filter_map(|s| s.valid_before)
            .filter(|before| from < *before && *before <= until);
        let mut times: Vec<DateTime<Utc>> = [from, until].into_iter().chain(lapses).collect();
        times.sort();
        let (at, valid) = times
            .into_iter()
            .map(|at| (at, self.valid_at(at).len()))
            .find(|(_, valid)| *valid < self.threshold as usize)?;
        Some(format!(
            "only {valid} key(s) of this signer set are still valid at {} (within a proposal's lifetime), fewer than the threshold {}: renew them with a signer-set motion before they lapse",
            format_timestamp(at),
            self.threshold
        ))
    }

    /// Warnings worth printing before a set takes force: with K = n one lost key freezes the
    /// ledger, and when the proposer does not count, a roll needs K signers besides its
    /// proposer, so K = n means no roll can ever commit.
    pub fn threshold_warnings(&self, proposer_counts: bool) -> Vec<String> {
        let n = self.signers.len();
        let k = self.threshold as usize;
        let mut warnings = Vec::new();
        if k == n {
            warnings.push(format!(
                "threshold {k} equals the number of signers: one lost key freezes the ledger"
            ));
            if !proposer_counts {
                warnings.push(format!(
                    "with approval.proposer_counts = false a proposal needs {k} co-signers besides its proposer, but only {} exist: no proposal can commit",
                    n - 1
                ));
            }
        }
        warnings
    }
}

/// Signatures a strict check has already accepted: exact (key, message, signature) triples,
/// by their memo key. Only `verify` fills a set, and only with the triples `verify_strict`
/// accepted, so a check that skips them gives every answer a fresh check would. The auditor's
/// workers verify each batch on their own cores and pass the set to the auditing thread; every
/// write path checks strictly (an empty set).
#[derive(Debug, Default)]
pub struct VerifiedSignatures(HashSet<[u8; 32]>);

impl VerifiedSignatures {
    /// Verifies many triples strictly at once; the set holds those accepted.
    pub fn verify(triples: &[(PublicKey, Vec<u8>, [u8; 64])]) -> VerifiedSignatures {
        VerifiedSignatures(verify_batch_for_memo(triples).into_iter().collect())
    }

    fn contains(&self, key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
        // An empty set (every write path) skips hashing the triple.
        !self.0.is_empty() && self.0.contains(&verified_memo_key(key, message, signature))
    }
}

/// Verifies a signature envelope strictly against `key` (unless `verified` holds exactly this
/// triple), then decodes its message: verify the exact bytes first, parse second.
pub fn verify_envelope(
    envelope: &SignatureEnvelope,
    key: &PublicKey,
    verified: &VerifiedSignatures,
) -> Result<Vec<u8>, Refusal> {
    let key_id = || envelope.key_id.clone();
    let message =
        from_hex(&envelope.message).map_err(|_| Refusal::MessageNotHex { key_id: key_id() })?;
    let signature: [u8; 64] = from_hex(&envelope.signature)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| Refusal::SignatureNotHex { key_id: key_id() })?;
    if !verified.contains(&key.as_bytes(), &message, &signature) {
        key.verify_strict(&message, &Signature::from_bytes(&signature))
            .map_err(|_| Refusal::SignatureInvalid { key_id: key_id() })?;
    }
    Ok(message)
}

/// The memo key of a (key, message, signature) triple (laid out in `crypto::canonical`).
fn verified_memo_key(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> [u8; 32] {
    crate::crypto::canonical::signature_memo_key(key, message, signature)
}

/// Strictly verifies many triples (`PublicKey::verify_strict` on each, in order); returns the
/// memo keys of those accepted. The auditor runs one call per batch on each worker thread; the
/// keys come decoded (and checked by `PublicKey::from_bytes_checked`) once per signer, not once
/// per signature.
fn verify_batch_for_memo(triples: &[(PublicKey, Vec<u8>, [u8; 64])]) -> Vec<[u8; 32]> {
    triples
        .iter()
        .filter(|(key, message, signature)| {
            key.verify_strict(message, &Signature::from_bytes(signature))
                .is_ok()
        })
        .map(|(key, message, signature)| verified_memo_key(&key.as_bytes(), message, signature))
        .collect()
}

/// Signs `message` with a key held in memory into an envelope (tests and the demo; commands
/// sign through `service::seal_with`, which takes an ssh-agent's key too).
pub fn seal_signature(
    secret: &crate::crypto::keys::SecretKey,
    message: Vec<u8>,
) -> SignatureEnvelope {
    let signature = secret.sign(&message);
    envelope_of(&secret.public(), &message, &signature)
}

/// The envelope of a signature by `key` over `message`: the only place a signature is wrapped
/// for the ledger.
pub fn envelope_of(key: &PublicKey, message: &[u8], signature: &[u8; 64]) -> SignatureEnvelope {
    SignatureEnvelope {
        key_id: key.key_id().to_string(),
        message: to_hex(message),
        signature: to_hex(signature),
    }
}

/// The governance state in force: signer set, policy, and the `ledger` stream's version.
/// Saved (serde) as the texts it was parsed from, and parsed and checked again when restored.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(into = "GovernanceRecord", try_from = "GovernanceRecord")]
pub struct Governance {
    pub ledger_id: Uuid,
    pub set: ActiveSet,
    pub set_json: String,
    /// `signer_set_hash(set_json)` in lowercase hex: what a recording binds the set by.
    pub set_hash: String,
    pub policy: Policy,
    pub policy_json: String,
    pub policy_hash: String,
    pub policy_version: u64,
    /// Events in the `ledger` stream so far (for optimistic concurrency).
    pub stream_version: u64,
}

/// `Governance` as saved: the signer set and policy as their exact JSON texts.
#[derive(serde::Serialize, serde::Deserialize)]
struct GovernanceRecord {
    ledger_id: Uuid,
    set_json: String,
    policy_json: String,
    policy_hash: String,
    policy_version: u64,
    stream_version: u64,
}

impl From<Governance> for GovernanceRecord {
    fn from(governance: Governance) -> Self {
        GovernanceRecord {
            ledger_id: governance.ledger_id,
            set_json: governance.set_json,
            policy_json: governance.policy_json,
            policy_hash: governance.policy_hash,
            policy_version: governance.policy_version,
            stream_version: governance.stream_version,
        }
    }
}

impl TryFrom<GovernanceRecord> for Governance {
    type Error = String;

    fn try_from(record: GovernanceRecord) -> Result<Self, Self::Error> {
        let set = ActiveSet::parse(&record.set_json).map_err(|r| r.to_string())?;
        let policy = Policy::from_canonical_json(&record.policy_json).map_err(|e| e.to_string())?;
        if policy.hash_hex() != record.policy_hash {
            return Err("the saved policy does not match its hash".into());
        }
        Ok(Governance {
            ledger_id: record.ledger_id,
            set,
            set_hash: set_hash_hex(&record.set_json),
            set_json: record.set_json,
            policy,
            policy_json: record.policy_json,
            policy_hash: record.policy_hash,
            policy_version: record.policy_version,
            stream_version: record.stream_version,
        })
    }
}

fn set_hash_hex(set_json: &str) -> String {
    to_hex(&crate::crypto::canonical::signer_set_hash(set_json))
}

impl Governance {
    /// Checks a genesis payload completely: format, signer set, policy and hash, and the
    /// creator's signature over the exact texts; the creator must be in the set.
    pub fn genesis(ledger_id: Uuid, genesis: &LedgerCreated) -> Result<Governance, Refusal> {
        if genesis.format != LEDGER_FORMAT {
            return Err(Refusal::GenesisFormat {
                format: genesis.format.clone(),
            });
        }
        let set = ActiveSet::parse(&genesis.signer_set_json)?;
        if set.version != 1 {
            return Err(Refusal::GenesisSetVersion {
                version: set.version,
            });
        }
        if genesis.policy_version != 1 {
            return Err(Refusal::GenesisPolicyVersion);
        }
        let policy = Policy::from_canonical_json(&genesis.policy_json)
            .map_err(|source| Refusal::GenesisPolicy { source })?;
        if policy.canonical_json() != genesis.policy_json {
            return Err(Refusal::GenesisPolicyNotCanonical);
        }
        let policy_hash = policy.hash_hex();
        if policy_hash != genesis.policy_hash {
            return Err(Refusal::GenesisPolicyHash {
                stored: genesis.policy_hash.clone(),
                computed: policy_hash,
            });
        }
        let creator =
            set.by_key_id(&genesis.signature.key_id)
                .ok_or_else(|| Refusal::CreatorNotInSet {
                    key_id: genesis.signature.key_id.clone(),
                })?;
        let message = verify_envelope(
            &genesis.signature,
            &creator.key,
            &VerifiedSignatures::default(),
        )?;
        let expected = genesis_message(
            &ledger_id,
            &genesis.signer_set_json,
            &genesis.policy_json,
            &genesis.policy_hash,
        );
        if message != expected {
            return Err(Refusal::GenesisMessage);
        }
        Ok(Governance {
            ledger_id,
            set,
            set_json: genesis.signer_set_json.clone(),
            set_hash: set_hash_hex(&genesis.signer_set_json),
            policy,
            policy_json: genesis.policy_json.clone(),
            policy_hash,
            policy_version: 1,
            stream_version: 1,
        })
    }

    /// Refuses a genesis signed (at `at`, its chain time) by a key outside its lifetime (A15).
    pub fn creator_valid_at(&self, key_id: &str, at: DateTime<Utc>) -> Result<(), Refusal> {
        match self.set.by_key_id(key_id) {
            Some(creator) => creator.check_valid_at(at, "genesis"),
            None => Err(Refusal::CreatorNotInSet {
                key_id: key_id.to_string(),
            }),
        }
    }

    /// Applies an adoption event of the `ledger` stream. Whether the adoption was approved is
    /// checked where the motion's commit is decided or replayed, not here.
    pub fn apply(&mut self, event: &Event) -> Result<(), Refusal> {
        match event {
            Event::SignerSetAdopted(adopted) => {
                let set = ActiveSet::parse(&adopted.signer_set_json)?;
                if set.version != self.set.version + 1 || adopted.signer_set_version != set.version
                {
                    return Err(Refusal::SignerSetAdoptedOutOfTurn {
                        adopted: adopted.signer_set_version,
                        in_force: self.set.version,
                    });
                }
                self.set = set;
                self.set_json = adopted.signer_set_json.clone();
                self.set_hash = set_hash_hex(&self.set_json);
            }
            Event::PolicyAdopted(adopted) => {
                let policy = Policy::from_canonical_json(&adopted.policy_json)
                    .map_err(|source| Refusal::AdoptedPolicy { source })?;
                if policy.canonical_json() != adopted.policy_json
                    || policy.hash_hex() != adopted.policy_hash
                {
                    return Err(Refusal::AdoptedPolicyNotCanonical);
                }
                if adopted.policy_version != self.policy_version + 1 {
                    return Err(Refusal::PolicyAdoptedOutOfTurn {
                        adopted: adopted.policy_version,
                        in_force: self.policy_version,
                    });
                }
                self.policy = policy;
                self.policy_json = adopted.policy_json.clone();
                self.policy_hash = adopted.policy_hash.clone();
                self.policy_version = adopted.policy_version;
            }
            other => {
                return Err(Refusal::NotInLedgerStream {
                    event_type: other.event_type(),
                })
            }
        }
        self.stream_version += 1;
        Ok(())
    }

    /// Folds the `ledger` stream (genesis first) into the state in force.
    pub fn from_ledger_stream(
        ledger_id: Uuid,
        events: &[super::envelope::StoredEvent],
    ) -> Result<Governance, Refusal> {
        Self::fold_ledger_stream(ledger_id, events, |_| {})
    }

    /// `from_ledger_stream`, calling `each` with the state in force after genesis and after
    /// each adoption: every signer set and policy the ledger has had, each parsed once.
    pub fn fold_ledger_stream(
        ledger_id: Uuid,
        events: &[super::envelope::StoredEvent],
        mut each: impl FnMut(&Governance),
    ) -> Result<Governance, Refusal> {
        let mut iter = events.iter();
        let first = iter.next().ok_or(Refusal::NoGenesis)?;
        let parse = |event: &super::envelope::StoredEvent| {
            Event::from_payload(&event.event_type, event.schema_version, &event.payload).map_err(
                |source| Refusal::Payload {
                    seq: event.seq,
                    source,
                },
            )
        };
        let Event::LedgerCreated(genesis) = parse(first)? else {
            return Err(Refusal::LedgerStreamStart { seq: first.seq });
        };
        let mut governance = Governance::genesis(ledger_id, &genesis)?;
        each(&governance);
        for event in iter {
            governance
                .apply(&parse(event)?)
                .map_err(|source| Refusal::AtSeq {
                    seq: event.seq,
                    source: Box::new(source),
                })?;
            each(&governance);
        }
        Ok(governance)
    }
}

/// Decodes a signed message's fields (`crypto::canonical`), its malformation a `Refusal`.
pub fn decode(message: &[u8]) -> Result<crate::crypto::canonical::SignedMessage, Refusal> {
    decode_signed_message(message).map_err(|reason| Refusal::MessageMalformed { reason })
}
