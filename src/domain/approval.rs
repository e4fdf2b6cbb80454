//! The approval state machine: given the governance in force and a proposal's events, when a
//! command (propose, sign, reject, withdraw), then new events or a refusal. Pure: time is an
//! argument, signatures arrive already made, nothing is read or written here.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::chain::{check_bound_head, Chain, Stored};
use super::envelope::{parse_timestamp, StoredEvent};
use super::events::{
    Event, PolicyAdopted, ProposalCommitted, ProposalKind, ProposalRecorded, ProposalRejected,
    ProposalSigned, ProposalWithdrawn, SignatureEnvelope, SignerSetAdopted,
};
use super::governance::{
    decode, verify_envelope, ActiveSet, ActiveSigner, Governance, Mismatch, Refusal,
    VerifiedSignatures,
};
pub use super::layers::{DrawsFrom, LayerBook};
use super::proposal::{parse_event, parse_proposal_id, proposed_set_of};
// The proposal and its fold live in `proposal`; they are part of this state machine's API.
pub use super::proposal::{
    cosign_purpose, message_for, subject_digest_of, ProposalDraft, ProposalState, Status,
};
use crate::crypto::canonical::{Purpose, REASON_BYTES_MAX};
use crate::crypto::to_hex;
use crate::sizing::{self, Policy, Proposal, SizingReport};

/// The next signer set a set motion proposes (validated), if it is one.
pub fn proposed_set(state: &ProposalState) -> Result<Option<ActiveSet>, Refusal> {
    proposed_set_of(&state.recorded.terms)
}

/// What a signature on a proposal must bind besides its purpose.
struct Binding<'a> {
    ledger_id: Uuid,
    proposal_id: Uuid,
    set_version: u64,
    digest: &'a [u8; 32],
    /// The earliest seq its bound head may have: the proposal's recording (the head the
    /// recording itself follows, for the proposer's signature).
    earliest_head: u64,
}

impl<'a> Binding<'a> {
    fn of(ledger_id: Uuid, state: &'a ProposalState) -> Self {
        Binding {
            ledger_id,
            proposal_id: state.id,
            set_version: state.recorded.terms.signer_set_version,
            digest: &state.digest,
            earliest_head: state.first_seq,
        }
    }
}

/// Checks a signature envelope on a proposal: the key is the signer's, the signature is strict-
/// valid over the stored message, and the message binds this ledger, proposal, set version,
/// subject digest, purpose (and veto reason), and a head of `chain` (`check_bound_head`).
fn check_proposal_signature(
    binding: &Binding<'_>,
    chain: &mut dyn Chain,
    envelope: &SignatureEnvelope,
    key: &crate::crypto::keys::PublicKey,
    purpose: Purpose,
    reason: Option<&str>,
    verified: &VerifiedSignatures,
) -> Result<Option<String>, Refusal> {
    let message = verify_envelope(envelope, key, verified)?;
    let decoded = decode(&message)?;
    let (ledger_id, state_id, set_version, digest) = (
        binding.ledger_id,
        binding.proposal_id,
        binding.set_version,
        binding.digest,
    );
    let mismatch = if decoded.purpose != purpose {
        Some(Mismatch::Purpose {
            found: decoded.purpose,
            expected: purpose,
        })
    } else if decoded.ledger_id != ledger_id {
        Some(Mismatch::Ledger {
            found: decoded.ledger_id,
            expected: ledger_id,
        })
    } else if decoded.proposal_id != state_id {
        Some(Mismatch::Proposal {
            found: decoded.proposal_id,
            expected: state_id,
        })
    } else if decoded.signer_set_version != set_version {
        Some(Mismatch::SignerSetVersion {
            found: decoded.signer_set_version,
            expected: set_version,
        })
    } else if &decoded.subject_digest != digest {
        Some(Mismatch::SubjectDigest)
    } else if decoded.reason.as_deref() != reason {
        Some(Mismatch::VetoReason)
    } else {
        check_bound_head(chain, &decoded.head, binding.earliest_head).err()
    };
    match mismatch {
        Some(mismatch) => Err(Refusal::Misbound {
            key_id: envelope.key_id.clone(),
            mismatch,
        }),
        None => Ok(decoded.signed_at),
    }
}

/// Check T3: an offline co-signature's `signed_at` (the signer's clock when it signed) is a
/// canonical timestamp no later than the proposal's expiry, and within the policy's skew of
/// the proposal's life as the ledger's clock saw it: not before its creation, not after `now`
/// (the time its event records).
fn check_signing_time(
    governance: &Governance,
    state: &ProposalState,
    signed_at: &str,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    let at = parse_timestamp(signed_at).ok_or_else(|| Refusal::SigningTimeMalformed {
        text: signed_at.to_string(),
    })?;
    if at > state.expires_at {
        return Err(Refusal::SignedAfterExpiry {
            signed_at: signed_at.to_string(),
            expires_at: state.recorded.terms.expires_at.clone(),
        });
    }
    let skew =
        chrono::Duration::seconds(i64::from(governance.policy.timing.clock_skew_max_seconds));
    if at < state.created_at - skew || at > now + skew {
        return Err(Refusal::SigningTimeOutsideLife {
            signed_at: signed_at.to_string(),
            created_at: state.recorded.terms.created_at.clone(),
            recorded_at: crate::domain::envelope::format_timestamp(now),
            max_seconds: governance.policy.timing.clock_skew_max_seconds,
        });
    }
    Ok(())
}

/// Recomputes what a recorded proposal must be: bound to the governance in force, digest and
/// proposer signature valid, body valid for its kind, and for a roll, a report equal to a fresh
/// evaluation at the recorded creation time. Used before recording and on replay.
pub fn check_recorded(
    governance: &Governance,
    recorded: &ProposalRecorded,
    chain: &mut dyn Chain,
    draws_from: DrawsFrom<'_>,
) -> Result<(), Refusal> {
    check_recorded_parsed(
        governance,
        recorded,
        chain,
        draws_from,
        None,
        &VerifiedSignatures::default(),
    )
    .map(drop)
}

/// The part of a roll's recording that costs real work to read (its TOML body) and depends on
/// nothing but the payload itself, so the auditor's pipeline can read it ahead, on any core.
/// The rules that use it stay in `check_recorded_parsed`. (The stored report is not read
/// ahead: it is usually compared as bytes, see there.)
#[derive(Debug)]
pub struct ParsedRoll {
    proposal: Result<Proposal, String>,
    /// Pair assertion: the recording this was parsed from (body and report lengths).
    source_bytes: (usize, usize),
}

impl ParsedRoll {
    /// `None` unless `recorded` is a roll that carries a report (the rules refuse the rest).
    pub fn parse(recorded: &ProposalRecorded) -> Option<ParsedRoll> {
        if recorded.terms.kind != ProposalKind::Roll {
            return None;
        }
        let report_json = recorded.terms.report_json.as_deref()?;
        Some(ParsedRoll {
            proposal: Proposal::from_toml_str(&recorded.terms.body)
                .map_err(|error| error.to_string()),
            source_bytes: (recorded.terms.body.len(), report_json.len()),
        })
    }
}

/// `check_recorded` with the roll's body and report already parsed (`ParsedRoll::parse` of
/// this same `recorded`; `None` parses them here) and the proposer's signature not checked
/// again when `verified` holds it. Same rules, same order, same messages. A roll's parsed body
/// is handed back (the auditor folds it into its `LayerBook`).
pub fn check_recorded_parsed(
    governance: &Governance,
    recorded: &ProposalRecorded,
    chain: &mut dyn Chain,
    draws_from: DrawsFrom<'_>,
    parsed: Option<ParsedRoll>,
    verified: &VerifiedSignatures,
) -> Result<Option<Proposal>, Refusal> {
    // Read in place: the recording's body and report are kilobytes, and a verifier checks
    // every recording.
    let draft = &recorded.terms;
    let proposal_id = parse_proposal_id(draft)?;
    if draft.signer_set_version != governance.set.version {
        return Err(Refusal::SignerSetNotInForce {
            bound: draft.signer_set_version,
            in_force: governance.set.version,
        });
    }
    if draft.signer_set_hash != governance.set_hash {
        return Err(Refusal::SignerSetHashNotInForce {
            bound_hash: draft.signer_set_hash.clone(),
            in_force_hash: governance.set_hash.clone(),
        });
    }
    if draft.policy_version != governance.policy_version
        || draft.policy_hash != governance.policy_hash
    {
        return Err(Refusal::PolicyNotInForce {
            bound_version: draft.policy_version,
            bound_hash: draft.policy_hash.clone(),
            in_force_version: governance.policy_version,
            in_force_hash: governance.policy_hash.clone(),
        });
    }
    let created_at = parse_timestamp(&draft.created_at).ok_or(Refusal::TimestampNotCanonical {
        field: "created_at",
    })?;
    let expires_at = parse_timestamp(&draft.expires_at).ok_or(Refusal::TimestampNotCanonical {
        field: "expires_at",
    })?;
    let ttl = governance.policy.approval.proposal_ttl_seconds;
    if (expires_at - created_at).num_seconds() != ttl as i64 {
        return Err(Refusal::ExpiryNotTtl { ttl_seconds: ttl });
    }
    let digest = subject_digest_of(&governance.ledger_id, &proposal_id, draft);
    if to_hex(&digest) != recorded.subject_digest {
        return Err(Refusal::SubjectDigestMismatch);
    }
    let proposer = governance
        .set
        .by_key_id(&recorded.signature.key_id)
        .ok_or_else(|| Refusal::ProposerNotInSet {
            key_id: recorded.signature.key_id.clone(),
            set_version: governance.set.version,
            names: governance.set.names(),
        })?;
    // Judged at the draft's creation on the ledger's clock; the auditor judges it again at the
    // recording's own time, which a writer keeps before the key's valid_before (its deadline).
    proposer.check_valid_at(created_at, "proposal")?;
    // The proposer binds exactly the head the recording follows.
    let earliest_head = chain.head().seq;
    check_proposal_signature(
        &Binding {
            ledger_id: governance.ledger_id,
            proposal_id,
            set_version: draft.signer_set_version,
            digest: &digest,
            earliest_head,
        },
        chain,
        &recorded.signature,
        &proposer.key,
        Purpose::Propose,
        None,
        verified,
    )?;
    match draft.kind {
        ProposalKind::Roll => {
            if draft.report_json.is_none() {
                return Err(Refusal::RollWithoutReport);
            }
            let parsed = match parsed {
                Some(parsed) => parsed,
                None => ParsedRoll::parse(recorded).expect("a roll with a report parses"),
            };
            assert_eq!(
                parsed.source_bytes,
                (
                    recorded.terms.body.len(),
                    recorded.terms.report_json.as_deref().map_or(0, str::len)
                ),
                "a ParsedRoll is checked against the recording it was parsed from"
            );
            let report_json = recorded.terms.report_json.as_deref().unwrap_or_default();
            // The draws at the head the recording follows (A12); a body that does not parse
            // draws nothing: it is refused below for its body.
            let draws = match (&parsed.proposal, draws_from) {
                (Ok(proposal), DrawsFrom::Book(book)) => book
                    .draws_for(proposal, &recorded.terms.body, governance, created_at)
                    .map_err(Refusal::Layer)?,
                (Ok(_), DrawsFrom::Stated) => stated_draws(report_json)?,
                (Err(_), _) => sizing::Draws::none(),
            };
            let fresh = parsed.proposal.as_ref().ok().map(|proposal| {
                sizing::evaluate_hashed(
                    proposal,
                    &governance.policy,
                    &governance.policy_hash,
                    &draws,
                    created_at,
                )
            });
            // Fast path: the fresh evaluation, all of its numbers finite, serializes to exactly
            // the stored bytes. The stored report then parses to that same value (serde_json
            // reads back what it wrote, floats bit for bit: `float_roundtrip`; only non-finite
            // floats would not, and there are none), so it agrees with the evaluation. Any
            // other stored report takes the full path: parse it, then compare within tolerance.
            // (Written into a buffer of the stored report's size: growing one copies it.)
            let same_bytes = matches!(&fresh, Some(Ok(fresh)) if fresh.all_numbers_finite() && {
                let mut json = Vec::with_capacity(report_json.len());
                serde_json::to_writer(&mut json, fresh).is_ok() && json == report_json.as_bytes()
            });
            let fresh = if same_bytes {
                fresh.and_then(Result::ok).expect("matched above")
            } else {
                let recorded_report: SizingReport =
                    serde_json::from_str(report_json).map_err(|error| {
                        Refusal::ReportUnparsable {
                            reason: error.to_string(),
                        }
                    })?;
                // Reports have one spelling (docs/audit-format.md, check C12): the fast path
                // above proved it for the common case.
                if serde_json::to_string(&recorded_report).ok().as_deref() != Some(report_json) {
                    return Err(Refusal::ReportUnparsable {
                        reason: "not in canonical form (whitespace, key order, number or escape spelling differs from what rollbook writes) (C12)".into(),
                    });
                }
                let invalid = |reason: String| Refusal::BodyInvalid { reason };
                if let Err(reason) = &parsed.proposal {
                    return Err(invalid(reason.clone()));
                }
                let fresh = fresh
                    .expect("evaluated when the body parsed")
                    .map_err(|error| invalid(error.to_string()))?;
                recorded_report
                    .agrees_with(&fresh)
                    .map_err(|difference| Refusal::ReportDiffers { difference })?;
                fresh
            };
            if draft.verdict.as_deref() != Some(fresh.verdict.as_str())
                || draft.contracts_requested != Some(fresh.contracts_requested)
            {
                return Err(Refusal::VerdictDiffers);
            }
            return Ok(parsed.proposal.ok());
        }
        ProposalKind::SignerSet => {
            if draft.report_json.is_some()
                || draft.verdict.is_some()
                || draft.contracts_requested.is_some()
            {
                return Err(Refusal::MotionWithReport);
            }
            let next = ActiveSet::parse(&draft.body)?;
            if next.version != governance.set.version + 1 {
                return Err(Refusal::NextSetVersion {
                    expected: governance.set.version + 1,
                    found: next.version,
                });
            }
            if next.same_members_as(&governance.set) {
                return Err(Refusal::SameSignerSet);
            }
            let departing = departing(&governance.set, &next);
            let proposer_stays = departing
                .iter()
                .all(|member| member.key_id != recorded.signature.key_id);
            let others_staying =
                governance.set.signers.len() - departing.len() - usize::from(proposer_stays);
            let needed = cosigners_needed(&governance.set, proposer_stays);
            if !departing.is_empty() && others_staying < needed {
                return Err(Refusal::TooFewSignersStay {
                    departing: departing.iter().map(|member| member.name.clone()).collect(),
                    staying: others_staying,
                    needed,
                });
            }
        }
        ProposalKind::Policy => {
            if draft.report_json.is_some()
                || draft.verdict.is_some()
                || draft.contracts_requested.is_some()
            {
                return Err(Refusal::MotionWithReport);
            }
            let next = Policy::from_canonical_json(&draft.body)
                .map_err(|source| Refusal::ProposedPolicy { source })?;
            if next.canonical_json() != draft.body {
                return Err(Refusal::ProposedPolicyNotCanonical);
            }
            if next.hash_hex() == governance.policy_hash {
                return Err(Refusal::SamePolicy);
            }
        }
    }
    Ok(None)
}

/// The draws a stored report states (`drawn`), for a recording whose draws were derived
/// when it was verified.
fn stated_draws(report_json: &str) -> Result<sizing::Draws, Refusal> {
    #[derive(serde::Deserialize)]
    struct Stated {
        drawn: sizing::Draws,
    }
    serde_json::from_str::<Stated>(report_json)
        .map(|stated| stated.drawn)
        .map_err(|error| Refusal::ReportUnparsable {
            reason: error.to_string(),
        })
}

/// When `propose`: the `proposal.recorded` event, or why not.
pub fn decide_propose(
    governance: &Governance,
    draft: &ProposalDraft,
    signature: SignatureEnvelope,
    chain: &mut dyn Chain,
    layers: &LayerBook,
) -> Result<Event, Refusal> {
    let recorded = ProposalRecorded {
        terms: draft.terms.clone(),
        subject_digest: to_hex(&draft.subject_digest()),
        signature,
    };
    check_recorded(governance, &recorded, chain, DrawsFrom::Book(layers))?;
    Ok(Event::ProposalRecorded(recorded))
}

/// Who counts toward the threshold(s), and who is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Key ids counted toward the threshold of the set in force, in signing order.
    pub counted: Vec<String>,
    /// Signatures of the set in force needed: K, or for a signer-set motion that removes or
    /// rotates signers, `departing_threshold`.
    pub threshold: u32,
    /// Names of signers who may still sign.
    pub missing: Vec<String>,
    pub satisfied: bool,
    /// For a signer-set motion: what the next set still needs, in words.
    pub pending_requirement: Option<String>,
}

/// The members of the set in force that a next set removes or rotates: those whose key it does
/// not hold (a rotated signer keeps the name, not the key).
pub fn departing<'a>(in_force: &'a ActiveSet, next: &ActiveSet) -> Vec<&'a ActiveSigner> {
    in_force
        .signers
        .iter()
        .filter(|member| next.by_key(&member.key.as_bytes()).is_none())
        .collect()
}

/// Signatures of the set in force a signer-set motion needs when it removes or rotates signers:
/// K capped at n - 1, counted among the signers who stay. Capped so that the signer a motion
/// concerns never has to sign it (K = n would need them); capped at n - 1 whatever the number
/// departing, so that removing several signers at once is never easier than removing one.
pub fn departing_threshold(in_force: &ActiveSet) -> u32 {
    let others = u32::try_from(in_force.signers.len().saturating_sub(1)).unwrap_or(u32::MAX);
    in_force.threshold.min(others)
}

/// Co-signers who stay that a signer-set motion removing or rotating signers needs, besides the
/// proposer: `departing_threshold` less the proposer when the proposer stays, and at least one
/// (one signer alone never changes who signs; a set of one has nobody else).
fn cosigners_needed(in_force: &ActiveSet, proposer_stays: bool) -> usize {
    let needed = departing_threshold(in_force) as usize;
    if in_force.signers.len() == 1 {
        0
    } else if proposer_stays {
        needed.saturating_sub(1).max(1)
    } else {
        needed
    }
}

/// Counts distinct keys of the set in force that signed (the proposer only when the policy says
/// so); for a signer-set motion also K of the next set and every newly added key. A signer-set
/// motion that removes or rotates signers counts only the signers who stay, the proposer among
/// them whatever `proposer_counts` says (maker-checker does not apply to removing someone
/// else), toward `departing_threshold`.
pub fn tally(governance: &Governance, state: &ProposalState) -> Result<Tally, Refusal> {
    tally_with(governance, state, None)
}

/// `tally` as if `cosigner` had co-signed after the signatures `state` holds (what a new
/// co-signature decides; no copy of the proposal, whose body and report are kilobytes).
fn tally_with(
    governance: &Governance,
    state: &ProposalState,
    cosigner: Option<&str>,
) -> Result<Tally, Refusal> {
    let next_set = proposed_set(state)?;
    let departing: Vec<&str> = next_set
        .as_ref()
        .map(|next| departing(&governance.set, next))
        .unwrap_or_default()
        .into_iter()
        .map(|member| member.key_id.as_str())
        .collect();
    let (proposer_counts, threshold) = if departing.is_empty() {
        (
            governance.policy.approval.proposer_counts,
            governance.set.threshold,
        )
    } else {
        (true, departing_threshold(&governance.set))
    };
    let cosigners = || {
        state
            .cosignatures
            .iter()
            .map(|c| c.key_id.as_str())
            .chain(cosigner)
    };
    let has_signed = |key_id: &str| state.proposer() == key_id || cosigners().any(|c| c == key_id);
    let mut signers: Vec<&str> = Vec::new();
    if proposer_counts {
        signers.push(state.proposer());
    }
    signers.extend(cosigners());
    // Distinct raw keys of a set: a key id maps to exactly one member, and members have
    // distinct keys, so counting distinct members counts distinct raw public keys.
    let count_in = |set: &ActiveSet, signers: &[&str]| -> Vec<String> {
        let mut seen: Vec<[u8; 32]> = Vec::new();
        let mut counted = Vec::new();
        for key_id in signers {
            if let Some(member) = set.by_key_id(key_id) {
                let raw = member.key.as_bytes();
                if !seen.contains(&raw) {
                    seen.push(raw);
                    counted.push(member.key_id.clone());
                }
            }
        }
        counted
    };
    let mut counted = count_in(&governance.set, &signers);
    // A departing signer's own signature is recorded but never counts for their departure.
    counted.retain(|key_id| !departing.contains(&key_id.as_str()));
    // A departure also needs co-signers who stay besides the proposer (`cosigners_needed`).
    let cosigners_counted = counted
        .iter()
        .filter(|key_id| key_id.as_str() != state.proposer())
        .count();
    let proposer_stays = !departing.contains(&state.proposer());
    let mut satisfied = counted.len() >= threshold as usize
        && (departing.is_empty()
            || cosigners_counted >= cosigners_needed(&governance.set, proposer_stays));
    let mut missing: Vec<String> = governance
        .set
        .signers
        .iter()
        .filter(|member| {
            !has_signed(&member.key_id) && !departing.contains(&member.key_id.as_str())
        })
        .map(|member| member.name.clone())
        .collect();
    let mut pending_requirement = None;
    if let Some(next) = &next_set {
        // The next set's count proves its keys are held; the proposer's own signature proves
        // that as well as any, so it counts here. Maker-checker applies to the set in force.
        let mut all_signers: Vec<&str> = vec![state.proposer()];
        all_signers.extend(cosigners());
        let counted_next = count_in(next, &all_signers);
        let new_members: Vec<&str> = next
            .signers
            .iter()
            .filter(|member| governance.set.by_key(&member.key.as_bytes()).is_none())
            .map(|member| member.key_id.as_str())
            .collect();
        let unsigned_new: Vec<String> = next
            .signers
            .iter()
            .filter(|member| {
                new_members.contains(&member.key_id.as_str())
                    && !cosigners().any(|c| c == member.key_id)
            })
            .map(|member| member.name.clone())
            .collect();
        let next_ok = counted_next.len() >= next.threshold as usize;
        if !next_ok || !unsigned_new.is_empty() {
            pending_requirement = Some(format!(
                "signer set v{} needs {} of its {} signers ({} so far){}",
                next.version,
                next.threshold,
                next.signers.len(),
                counted_next.len(),
                if unsigned_new.is_empty() {
                    String::new()
                } else {
                    format!(
                        " and a signature from each new key: {}",
                        unsigned_new.join(", ")
                    )
                }
            ));
        }
        satisfied = satisfied && next_ok && unsigned_new.is_empty();
        for member in &next.signers {
            if !has_signed(&member.key_id) && !missing.contains(&member.name) {
                missing.push(member.name.clone());
            }
        }
    }
    Ok(Tally {
        counted,
        threshold,
        missing,
        satisfied,
        pending_requirement,
    })
}

/// A decision acts only on a pending proposal that has not expired and is bound to the
/// governance in force. One bound to a replaced signer set or policy counts as expired
/// (`ProposalState::status_under`): no event may follow on it, so a governance commit need not
/// write its expiry, nor wait for it.
fn require_open(
    governance: &Governance,
    state: &ProposalState,
    now: DateTime<Utc>,
    action: &'static str,
) -> Result<(), Refusal> {
    let status = state.effective_status(now);
    if status == Status::Expired && state.status == Status::Pending {
        return Err(Refusal::Expired {
            action,
            proposal_id: state.id,
            expires_at: state.recorded.terms.expires_at.clone(),
        });
    }
    if status != Status::Pending {
        return Err(Refusal::Closed {
            action,
            proposal_id: state.id,
            status,
        });
    }
    if state.recorded.terms.signer_set_version != governance.set.version
        || state.recorded.terms.policy_version != governance.policy_version
        || state.recorded.terms.policy_hash != governance.policy_hash
    {
        return Err(Refusal::GovernanceNotInForce {
            proposal_id: state.id,
            signer_set_version: state.recorded.terms.signer_set_version,
            policy_version: state.recorded.terms.policy_version,
        });
    }
    Ok(())
}

/// The outcome of a co-signature: the events to append, and whether they commit.
#[derive(Debug, Clone)]
pub struct SignOutcome {
    pub events: Vec<Event>,
    pub committed: bool,
    pub tally: Tally,
}

/// When `sign`: a `proposal.signed` event, plus the commit (and, for governance, the adoption)
/// when the signature completes the threshold.
pub fn decide_sign(
    governance: &Governance,
    state: &ProposalState,
    signature: SignatureEnvelope,
    now: DateTime<Utc>,
    chain: &mut dyn Chain,
) -> Result<SignOutcome, Refusal> {
    let strict = VerifiedSignatures::default();
    decide_sign_trusting(governance, state, signature, now, chain, &strict)
}

/// `decide_sign` that does not check again a signature `verified` holds (the auditor's).
pub fn decide_sign_trusting(
    governance: &Governance,
    state: &ProposalState,
    signature: SignatureEnvelope,
    now: DateTime<Utc>,
    chain: &mut dyn Chain,
    verified: &VerifiedSignatures,
) -> Result<SignOutcome, Refusal> {
    require_open(governance, state, now, "sign")?;
    let next_set = proposed_set(state)?;
    let key_id = signature.key_id.clone();
    let member = governance
        .set
        .by_key_id(&key_id)
        .or_else(|| next_set.as_ref().and_then(|next| next.by_key_id(&key_id)))
        .ok_or_else(|| Refusal::NotASigner {
            key_id: key_id.clone(),
            set_version: governance.set.version,
            names: governance.set.names(),
            action: "sign",
        })?;
    member.check_valid_at(now, "signature")?;
    let name = member.name.clone();
    if state.proposer() == key_id {
        return Err(Refusal::ProposerSignedAlready {
            name,
            proposal_id: state.id,
            proposer_counts: governance.policy.approval.proposer_counts,
        });
    }
    if state.cosignatures.iter().any(|c| c.key_id == key_id) {
        return Err(Refusal::SignedAlready {
            name,
            proposal_id: state.id,
        });
    }
    let signed_at = check_proposal_signature(
        &Binding::of(governance.ledger_id, state),
        chain,
        &signature,
        &member.key,
        cosign_purpose(state.recorded.terms.kind),
        None,
        verified,
    )?;
    if let Some(signed_at) = signed_at {
        check_signing_time(governance, state, &signed_at, now)?;
    }
    let tally = tally_with(governance, state, Some(&key_id))?;
    let mut events = vec![Event::ProposalSigned(ProposalSigned {
        proposal_id: state.id.to_string(),
        signature,
    })];
    if tally.satisfied {
        events.push(Event::ProposalCommitted(ProposalCommitted {
            proposal_id: state.id.to_string(),
            counted_signers: tally.counted.clone(),
            signer_set_version: governance.set.version,
            threshold: tally.threshold,
        }));
        match state.recorded.terms.kind {
            ProposalKind::Roll => {}
            ProposalKind::SignerSet => {
                let next = next_set.expect("a set motion has a next set");
                events.push(Event::SignerSetAdopted(SignerSetAdopted {
                    motion_id: state.id.to_string(),
                    signer_set_version: next.version,
                    signer_set_json: state.recorded.terms.body.clone(),
                }));
            }
            ProposalKind::Policy => {
                events.push(Event::PolicyAdopted(PolicyAdopted {
                    motion_id: state.id.to_string(),
                    policy_version: governance.policy_version + 1,
                    policy_json: state.recorded.terms.body.clone(),
                    policy_hash: crate::crypto::to_hex(&crate::crypto::canonical::policy_hash(
                        &state.recorded.terms.body,
                    )),
                }));
            }
        }
        // No `proposal.expired` for the proposals bound to the replaced governance: they count
        // as expired without one (`require_open`), and a commit that named them would have to
        // expect their versions, racing every decision on them (issue 19, cases 7 and 9).
    }
    Ok(SignOutcome {
        committed: tally.satisfied,
        events,
        tally,
    })
}

/// When `reject`: any signer of the set in force vetoes a pending proposal, with a reason.
pub fn decide_reject(
    governance: &Governance,
    state: &ProposalState,
    signature: SignatureEnvelope,
    reason: &str,
    now: DateTime<Utc>,
    chain: &mut dyn Chain,
) -> Result<Event, Refusal> {
    let strict = VerifiedSignatures::default();
    decide_reject_trusting(governance, state, signature, reason, now, chain, &strict)
}

/// `decide_reject` that does not check again a signature `verified` holds (the auditor's).
pub fn decide_reject_trusting(
    governance: &Governance,
    state: &ProposalState,
    signature: SignatureEnvelope,
    reason: &str,
    now: DateTime<Utc>,
    chain: &mut dyn Chain,
    verified: &VerifiedSignatures,
) -> Result<Event, Refusal> {
    require_open(governance, state, now, "reject")?;
    if reason.trim().is_empty() || reason.len() > REASON_BYTES_MAX {
        return Err(Refusal::VetoReasonLength);
    }
    let member =
        governance
            .set
            .by_key_id(&signature.key_id)
            .ok_or_else(|| Refusal::NotASigner {
                key_id: signature.key_id.clone(),
                set_version: governance.set.version,
                names: governance.set.names(),
                action: "veto",
            })?;
    member.check_valid_at(now, "veto")?;
    if reason.chars().any(char::is_control) {
        return Err(Refusal::VetoReasonNotPrintable);
    }
    // A signer the motion removes cannot veto it: otherwise one rogue key blocks its own removal.
    if let Some(next) = proposed_set(state)? {
        if next.by_key(&member.key.as_bytes()).is_none() {
            return Err(Refusal::RemovedCannotVeto {
                name: member.name.clone(),
                motion_id: state.id,
            });
        }
    }
    check_proposal_signature(
        &Binding::of(governance.ledger_id, state),
        chain,
        &signature,
        &member.key,
        Purpose::Veto,
        Some(reason),
        verified,
    )?;
    Ok(Event::ProposalRejected(ProposalRejected {
        proposal_id: state.id.to_string(),
        reason: reason.to_string(),
        signature,
    }))
}

/// When `withdraw`: only the proposer, only while pending.
pub fn decide_withdraw(
    governance: &Governance,
    state: &ProposalState,
    signature: SignatureEnvelope,
    now: DateTime<Utc>,
    chain: &mut dyn Chain,
) -> Result<Event, Refusal> {
    let strict = VerifiedSignatures::default();
    decide_withdraw_trusting(governance, state, signature, now, chain, &strict)
}

/// `decide_withdraw` that does not check again a signature `verified` holds (the auditor's).
pub fn decide_withdraw_trusting(
    governance: &Governance,
    state: &ProposalState,
    signature: SignatureEnvelope,
    now: DateTime<Utc>,
    chain: &mut dyn Chain,
    verified: &VerifiedSignatures,
) -> Result<Event, Refusal> {
    require_open(governance, state, now, "withdraw")?;
    if signature.key_id != state.proposer() {
        let proposer = governance
            .set
            .by_key_id(state.proposer())
            .map(|m| m.name.clone())
            .unwrap_or_else(|| state.proposer().to_string());
        return Err(Refusal::NotTheProposer {
            proposer,
            proposal_id: state.id,
        });
    }
    // A proposer who has left the set can no longer act on the ledger, withdrawal included.
    let member =
        governance
            .set
            .by_key_id(&signature.key_id)
            .ok_or_else(|| Refusal::ProposerLeft {
                key_id: signature.key_id.clone(),
            })?;
    member.check_valid_at(now, "withdrawal")?;
    let key = member.key;
    check_proposal_signature(
        &Binding::of(governance.ledger_id, state),
        chain,
        &signature,
        &key,
        Purpose::Withdraw,
        None,
        verified,
    )?;
    Ok(Event::ProposalWithdrawn(ProposalWithdrawn {
        proposal_id: state.id.to_string(),
        signature,
    }))
}

/// Re-checks a pending proposal's stored history against the governance in force before a
/// decision builds on it: the recording (proposer signature, digest, report) and every stored
/// co-signature, each at its recorded time. Rows forged by someone with database access (the
/// chain has no secret in it) therefore cannot count toward K.
pub fn validate_history(
    governance: &Governance,
    events: &[StoredEvent],
) -> Result<ProposalState, Refusal> {
    let mut iter = events.iter();
    let first = iter.next().ok_or(Refusal::NoSuchProposal)?;
    let Event::ProposalRecorded(recorded) = parse_event(first)? else {
        return Err(Refusal::ProposalStreamStart {
            stream_id: first.stream_id.clone(),
        });
    };
    // A stored recording's draws were derived when this client's pin verified it (A12).
    check_recorded(
        governance,
        &recorded,
        &mut Stored::before(first),
        DrawsFrom::Stated,
    )
    .map_err(|source| Refusal::StoredProposalInvalid {
        seq: first.seq,
        source: Box::new(source),
    })?;
    let mut state = ProposalState::from_recorded(recorded, first)?;
    for event in iter {
        let payload = parse_event(event)?;
        let Event::ProposalSigned(signed) = &payload else {
            return Err(Refusal::NotPending {
                seq: event.seq,
                event_type: payload.event_type(),
            });
        };
        let at = event.recorded_at_utc().ok_or_else(|| Refusal::AtSeq {
            seq: event.seq,
            source: Box::new(Refusal::BadTimestamp),
        })?;
        let outcome = decide_sign(
            governance,
            &state,
            signed.signature.clone(),
            at,
            &mut Stored::before(event),
        )
        .map_err(|source| Refusal::StoredSignatureInvalid {
            seq: event.seq,
            source: Box::new(source),
        })?;
        if outcome.committed {
            return Err(Refusal::CommitMissing { seq: event.seq });
        }
        state.evolve(&payload, event);
    }
    Ok(state)
}

/// Re-checks a committed governance motion before its adoption is trusted: its recording and
/// co-signatures under the governance before it, and a commit and adoption exactly as its last
/// signature decides them. `motion` is the motion's stream: recorded, signed..., committed.
pub fn validate_motion(
    before: &Governance,
    motion: &[StoredEvent],
    adoption: &Event,
) -> Result<(), Refusal> {
    if motion.len() < 3 {
        return Err(Refusal::MotionIncomplete);
    }
    let (history, tail) = motion.split_at(motion.len() - 2);
    let state = validate_history(before, history)?;
    let Event::ProposalSigned(signed) = parse_event(&tail[0])? else {
        return Err(Refusal::MotionEnd { seq: tail[0].seq });
    };
    let committed = parse_event(&tail[1])?;
    let at = tail[0].recorded_at_utc().ok_or(Refusal::BadTimestamp)?;
    let outcome = decide_sign(
        before,
        &state,
        signed.signature,
        at,
        &mut Stored::before(&tail[0]),
    )?;
    if !outcome.committed
        || outcome.events.get(1) != Some(&committed)
        || outcome.events.get(2) != Some(adoption)
    {
        return Err(Refusal::AdoptionDiffers {
            motion_id: state.id,
        });
    }
    Ok(())
}
