//! Signer sets and the governance state in force: who may sign, how many must, which policy
//! applies. Pure: built from the `ledger` stream's events (genesis and adoptions).

use uuid::Uuid;

use super::events::{Event, LedgerCreated, SignerEntry, SignerSet, LEDGER_FORMAT};
use crate::crypto::canonical::{decode_signed_message, genesis_message};
use crate::crypto::hex::{from_hex, from_hex32, to_hex};
use crate::crypto::keys::{PublicKey, Signature};
use crate::domain::events::SignatureEnvelope;
use crate::sizing::Policy;

/// Limit on signers per ledger: approvals are read by people, and K-of-n stays legible.
pub const SIGNERS_MAX: usize = 32;
/// Limit on a signer's name and role, in bytes.
pub const NAME_BYTES_MAX: usize = 64;

/// Why the ledger's rules refuse a command, or why a recorded event is invalid on replay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

impl Refusal {
    pub fn new(message: impl Into<String>) -> Self {
        Refusal(message.into())
    }
}

/// A signer whose key passed the strict checks.
#[derive(Debug, Clone)]
pub struct ActiveSigner {
    pub name: String,
    pub role: Option<String>,
    pub key: PublicKey,
    pub key_id: String,
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
        let set: SignerSet = serde_json::from_str(json).map_err(|error| {
            Refusal::new(format!(
                "the signer set is not valid JSON for a signer set: {error}"
            ))
        })?;
        Self::validate(&set)
    }

    pub fn validate(set: &SignerSet) -> Result<ActiveSet, Refusal> {
        let n = set.signers.len();
        if n == 0 || n > SIGNERS_MAX {
            return Err(Refusal::new(format!(
                "a signer set has 1 to {SIGNERS_MAX} signers, this one has {n}"
            )));
        }
        if set.threshold < 1 || set.threshold as usize > n {
            return Err(Refusal::new(format!(
                "threshold must be between 1 and the number of signers ({n}), got {}",
                set.threshold
            )));
        }
        if set.version < 1 {
            return Err(Refusal::new("signer set versions start at 1"));
        }
        let mut signers: Vec<ActiveSigner> = Vec::with_capacity(n);
        for entry in &set.signers {
            let name = entry.name.trim();
            if name.is_empty()
                || name != entry.name
                || name.len() > NAME_BYTES_MAX
                || name.chars().any(char::is_control)
            {
                return Err(Refusal::new(format!(
                    "signer name {:?} must be 1 to {NAME_BYTES_MAX} bytes of printable text without surrounding spaces",
                    entry.name
                )));
            }
            if let Some(role) = &entry.role {
                if role.len() > NAME_BYTES_MAX || role.chars().any(char::is_control) {
                    return Err(Refusal::new(format!("signer {name}: role must be at most {NAME_BYTES_MAX} bytes of printable text")));
                }
            }
            let raw = from_hex32(&entry.public_key).map_err(|_| {
                Refusal::new(format!("signer {name}: public_key must be 32 bytes of hex"))
            })?;
            // Refuses small-order (weak) and non-canonical encodings.
            let key = PublicKey::from_bytes_checked(&raw)
                .map_err(|error| Refusal::new(format!("signer {name}: {error}")))?;
            let key_id = key.key_id().to_string();
            if key_id != entry.key_id {
                return Err(Refusal::new(format!(
                    "signer {name}: key_id {} does not match the public key ({key_id})",
                    entry.key_id
                )));
            }
            if let Some(other) = signers.iter().find(|s| s.name.eq_ignore_ascii_case(name)) {
                return Err(Refusal::new(format!(
                    "duplicate signer name: {} and {name}",
                    other.name
                )));
            }
            if let Some(other) = signers.iter().find(|s| s.key.as_bytes() == raw) {
                return Err(Refusal::new(format!(
                    "signers {} and {name} have the same public key",
                    other.name
                )));
            }
            signers.push(ActiveSigner {
                name: name.to_string(),
                role: entry.role.clone(),
                key,
                key_id,
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
                })
                .collect(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.to_signer_set()).expect("signer sets serialize")
    }

    /// Same threshold and same members (name, role, key), whatever the version.
    pub fn same_members_as(&self, other: &ActiveSet) -> bool {
        self.threshold == other.threshold
            && self.signers.len() == other.signers.len()
            && self.signers.iter().zip(&other.signers).all(|(a, b)| {
                a.name == b.name && a.role == b.role && a.key.as_bytes() == b.key.as_bytes()
            })
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

/// Verifies a signature envelope strictly against `key`, then decodes its message: verify the
/// exact bytes first, parse second.
pub fn verify_envelope(envelope: &SignatureEnvelope, key: &PublicKey) -> Result<Vec<u8>, Refusal> {
    let message = from_hex(&envelope.message).map_err(|_| {
        Refusal::new(format!(
            "signature of {}: the message is not hex",
            envelope.key_id
        ))
    })?;
    let signature: [u8; 64] = from_hex(&envelope.signature)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| {
            Refusal::new(format!(
                "signature of {}: not 64 bytes of hex",
                envelope.key_id
            ))
        })?;
    let memo = verified_memo_key(&key.as_bytes(), &message, &signature);
    if !VERIFIED.with(|set| set.borrow().contains(&memo)) {
        key.verify_strict(&message, &Signature::from_bytes(&signature))
            .map_err(|_| {
                Refusal::new(format!(
                    "signature of {} does not verify (strict ed25519)",
                    envelope.key_id
                ))
            })?;
    }
    Ok(message)
}

thread_local! {
    /// Triples (key, message, signature) already verified strictly on another core by the
    /// auditor's pipeline. A memo, not a shortcut: an entry exists only after the strict check
    /// (`verify_strict_batch`, the verdicts of `verify_strict`) accepted exactly that triple, so
    /// every answer is the one a fresh check would give.
    static VERIFIED: std::cell::RefCell<std::collections::HashSet<[u8; 32]>> = Default::default();
}

/// The memo key of a (key, message, signature) triple (laid out in `crypto::canonical`).
pub fn verified_memo_key(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> [u8; 32] {
    crate::crypto::canonical::signature_memo_key(key, message, signature)
}

/// Strictly verifies many triples (`PublicKey::verify_strict` on each, in order); returns the
/// memo keys of those accepted. The auditor runs one call per batch on each worker thread; the
/// keys come decoded (and checked by `PublicKey::from_bytes_checked`) once per signer, not once
/// per signature.
pub fn verify_batch_for_memo(triples: &[(PublicKey, Vec<u8>, [u8; 64])]) -> Vec<[u8; 32]> {
    triples
        .iter()
        .filter(|(key, message, signature)| {
            key.verify_strict(message, &Signature::from_bytes(signature))
                .is_ok()
        })
        .map(|(key, message, signature)| verified_memo_key(&key.as_bytes(), message, signature))
        .collect()
}

/// Replaces this thread's memo of verified triples (the auditor sets it per chunk of events).
pub fn set_verified_memo(keys: std::collections::HashSet<[u8; 32]>) {
    VERIFIED.with(|set| *set.borrow_mut() = keys);
}

/// Signs `message` into an envelope. The only place a key's signature is wrapped for the ledger.
pub fn seal_signature(
    secret: &crate::crypto::keys::SecretKey,
    message: Vec<u8>,
) -> SignatureEnvelope {
    let signature = secret.sign(&message);
    SignatureEnvelope {
        key_id: secret.public().key_id().to_string(),
        message: to_hex(&message),
        signature: to_hex(&signature),
    }
}

/// The governance state in force: signer set, policy, and the `ledger` stream's version.
#[derive(Debug, Clone)]
pub struct Governance {
    pub ledger_id: Uuid,
    pub set: ActiveSet,
    pub set_json: String,
    pub policy: Policy,
    pub policy_json: String,
    pub policy_hash: String,
    pub policy_version: u64,
    /// Events in the `ledger` stream so far (for optimistic concurrency).
    pub stream_version: u64,
}

impl Governance {
    /// Checks a genesis payload completely: format, signer set, policy and hash, and the
    /// creator's signature over the exact texts; the creator must be in the set.
    pub fn genesis(ledger_id: Uuid, genesis: &LedgerCreated) -> Result<Governance, Refusal> {
        if genesis.format != LEDGER_FORMAT {
            return Err(Refusal::new(format!(
                "genesis format {:?} is not {LEDGER_FORMAT:?}",
                genesis.format
            )));
        }
        let set = ActiveSet::parse(&genesis.signer_set_json)?;
        if set.version != 1 {
            return Err(Refusal::new(format!(
                "the genesis signer set must be version 1, got {}",
                set.version
            )));
        }
        if genesis.policy_version != 1 {
            return Err(Refusal::new("the genesis policy must be version 1"));
        }
        let policy = Policy::from_canonical_json(&genesis.policy_json)
            .map_err(|error| Refusal::new(format!("genesis policy: {error}")))?;
        if policy.canonical_json() != genesis.policy_json {
            return Err(Refusal::new("genesis policy_json is not in canonical form"));
        }
        let policy_hash = policy.hash_hex();
        if policy_hash != genesis.policy_hash {
            return Err(Refusal::new(format!(
                "genesis policy_hash {} does not match the policy ({policy_hash})",
                genesis.policy_hash
            )));
        }
        let creator = set.by_key_id(&genesis.signature.key_id).ok_or_else(|| {
            Refusal::new(format!(
                "the ledger's creator {} must be in its signer set",
                genesis.signature.key_id
            ))
        })?;
        let message = verify_envelope(&genesis.signature, &creator.key)?;
        let expected = genesis_message(
            &ledger_id,
            &genesis.signer_set_json,
            &genesis.policy_json,
            &genesis.policy_hash,
        );
        if message != expected {
            return Err(Refusal::new(
                "the genesis signature signs a different ledger, signer set or policy",
            ));
        }
        Ok(Governance {
            ledger_id,
            set,
            set_json: genesis.signer_set_json.clone(),
            policy,
            policy_json: genesis.policy_json.clone(),
            policy_hash,
            policy_version: 1,
            stream_version: 1,
        })
    }

    /// Applies an adoption event of the `ledger` stream. Whether the adoption was approved is
    /// checked where the motion's commit is decided or replayed, not here.
    pub fn apply(&mut self, event: &Event) -> Result<(), Refusal> {
        match event {
            Event::SignerSetAdopted(adopted) => {
                let set = ActiveSet::parse(&adopted.signer_set_json)?;
                if set.version != self.set.version + 1 || adopted.signer_set_version != set.version
                {
                    return Err(Refusal::new(format!(
                        "signer set v{} adopted while v{} is in force",
                        adopted.signer_set_version, self.set.version
                    )));
                }
                self.set = set;
                self.set_json = adopted.signer_set_json.clone();
            }
            Event::PolicyAdopted(adopted) => {
                let policy = Policy::from_canonical_json(&adopted.policy_json)
                    .map_err(|error| Refusal::new(format!("adopted policy: {error}")))?;
                if policy.canonical_json() != adopted.policy_json
                    || policy.hash_hex() != adopted.policy_hash
                {
                    return Err(Refusal::new(
                        "adopted policy is not canonical or its hash does not match",
                    ));
                }
                if adopted.policy_version != self.policy_version + 1 {
                    return Err(Refusal::new(format!(
                        "policy v{} adopted while v{} is in force",
                        adopted.policy_version, self.policy_version
                    )));
                }
                self.policy = policy;
                self.policy_json = adopted.policy_json.clone();
                self.policy_hash = adopted.policy_hash.clone();
                self.policy_version = adopted.policy_version;
            }
            other => {
                return Err(Refusal::new(format!(
                    "{} does not belong in the ledger stream",
                    other.event_type()
                )))
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
        let mut iter = events.iter();
        let first = iter
            .next()
            .ok_or_else(|| Refusal::new("the ledger has no genesis event"))?;
        let parse = |event: &super::envelope::StoredEvent| {
            Event::from_payload(&event.event_type, event.schema_version, &event.payload)
                .map_err(|error| Refusal::new(format!("seq {}: {error}", event.seq)))
        };
        let Event::LedgerCreated(genesis) = parse(first)? else {
            return Err(Refusal::new(format!(
                "seq {}: the ledger stream does not start with ledger.created",
                first.seq
            )));
        };
        let mut governance = Governance::genesis(ledger_id, &genesis)?;
        for event in iter {
            governance
                .apply(&parse(event)?)
                .map_err(|error| Refusal::new(format!("seq {}: {error}", event.seq)))?;
        }
        Ok(governance)
    }
}

/// Used by `decode_signed_message` callers that only need to confirm a message's shape.
pub fn decode(message: &[u8]) -> Result<crate::crypto::canonical::SignedMessage, Refusal> {
    decode_signed_message(message).map_err(Refusal::new)
}
