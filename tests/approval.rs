//! The approval state machine, given / when / then: given the governance and a proposal's
//! events, when a command, then the events it decides or the refusal. Pure: no database.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rollbook::crypto::canonical::ChainHead;
use rollbook::crypto::canonical::{genesis_message, Purpose};
use rollbook::crypto::keys::SecretKey;
use rollbook::crypto::to_hex;
use rollbook::domain::approval::{
    decide_propose, decide_reject, decide_sign, decide_withdraw, message_for, tally, LayerBook,
    ProposalDraft, ProposalState, Status,
};
use rollbook::domain::chain::AtHead;
use rollbook::domain::envelope::{NewEvent, StoredEvent};
use rollbook::domain::events::{
    Event, LedgerCreated, SignatureEnvelope, SignerEntry, SignerSet, LEDGER_FORMAT,
};
use rollbook::domain::governance::{seal_signature, ActiveSet, Governance, Mismatch, Refusal};
use rollbook::sizing::{Draws, Policy, Proposal};
use uuid::Uuid;

const EXAMPLE: &str = include_str!("vectors/example-proposal.toml");

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap()
}

struct Desk {
    ledger_id: Uuid,
    keys: Vec<(String, SecretKey)>,
    governance: Governance,
}

impl Desk {
    fn key(&self, name: &str) -> &SecretKey {
        &self
            .keys
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no key {name}"))
            .1
    }
}

fn entry(name: &str, key: &SecretKey) -> SignerEntry {
    SignerEntry {
        name: name.into(),
        role: None,
        public_key: to_hex(&key.public().as_bytes()),
        key_id: key.public().key_id().to_string(),
        valid_after: None,
        valid_before: None,
    }
}

fn desk_with(names: &[&str], threshold: u32, policy: Policy) -> Desk {
    let ledger_id = Uuid::now_v7();
    let keys: Vec<(String, SecretKey)> = names
        .iter()
        .map(|n| (n.to_string(), SecretKey::generate().unwrap()))
        .collect();
    let set = SignerSet {
        version: 1,
        threshold,
        signers: keys.iter().map(|(n, k)| entry(n, k)).collect(),
    };
    let set_json = serde_json::to_string(&set).unwrap();
    let policy_json = policy.canonical_json();
    let policy_hash = policy.hash_hex();
    let creator = &keys[0].1;
    let signature = seal_signature(
        creator,
        genesis_message(&ledger_id, &set_json, &policy_json, &policy_hash),
    );
    let genesis = LedgerCreated {
        format: LEDGER_FORMAT.into(),
        signer_set_json: set_json,
        policy_version: 1,
        policy_json,
        policy_hash,
        signature,
    };
    let governance = Governance::genesis(ledger_id, &genesis).expect("valid genesis");
    Desk {
        ledger_id,
        keys,
        governance,
    }
}

/// 2 of 3, bob proposes, alice and carol co-sign: the methodology's desk.
fn desk() -> Desk {
    desk_with(&["alice", "bob", "carol"], 2, Policy::default())
}

/// The worked example moved to `now` (as_of ten minutes earlier) and sized to `contracts`.
fn roll_body(contracts: u32, now: DateTime<Utc>) -> String {
    let mut proposal = Proposal::from_toml_str(EXAMPLE).unwrap();
    let as_of = Utc.with_ymd_and_hms(2026, 5, 7, 14, 30, 0).unwrap();
    proposal.shift_times(now - Duration::minutes(10) - as_of);
    proposal.set_contracts_requested(contracts);
    proposal.to_toml_string()
}

fn stored(desk: &Desk, seq: u64, version: u64, event: &Event, at: DateTime<Utc>) -> StoredEvent {
    StoredEvent::seal(
        desk.ledger_id,
        seq,
        version,
        Uuid::now_v7(),
        at,
        [0; 32],
        NewEvent {
            stream_id: event.stream_id().to_string(),
            event_type: event.event_type().into(),
            schema_version: 1,
            actor: None,
            payload: event.to_payload(),
        },
    )
}

/// Given: `proposer` proposed a roll of `contracts` at t0.
fn given_roll(desk: &Desk, proposer: &str, contracts: u32) -> ProposalState {
    let (draft, _) = ProposalDraft::roll(
        &desk.governance,
        Uuid::now_v7(),
        roll_body(contracts, t0()),
        &Draws::none(),
        t0(),
    )
    .unwrap();
    let signature = seal_signature(desk.key(proposer), draft.message(&first_head()));
    let event = decide_propose(
        &desk.governance,
        &draft,
        signature,
        &mut AtHead::new(first_head()),
        &LayerBook::default(),
    )
    .expect("proposal accepted");
    let Event::ProposalRecorded(recorded) = &event else {
        panic!("not a recording")
    };
    ProposalState::from_recorded(recorded.clone(), &stored(desk, 2, 1, &event, t0())).unwrap()
}

fn cosign(desk: &Desk, state: &ProposalState, signer: &str) -> SignatureEnvelope {
    seal_signature(
        desk.key(signer),
        message_for(
            desk.ledger_id,
            state,
            rollbook::domain::approval::cosign_purpose(state.recorded.terms.kind),
            &head_after(state),
            None,
        ),
    )
}

/// When `signer` co-signs at `at`: apply the decided events to the state (as the store would).
fn when_signed(
    desk: &Desk,
    state: &mut ProposalState,
    signer: &str,
    at: DateTime<Utc>,
) -> Result<Vec<Event>, Refusal> {
    let outcome = decide_sign(
        &desk.governance,
        state,
        cosign(desk, state, signer),
        at,
        &mut at_head(state),
    )?;
    for event in &outcome.events {
        let version = state.stream_version + 1;
        state.evolve(event, &stored(desk, state.last_seq + 1, version, event, at));
    }
    Ok(outcome.events)
}

fn types(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::event_type).collect()
}

/// Then: the command is refused for this reason (a `Refusal` variant, with a guard when the
/// variant alone does not say enough).
macro_rules! assert_refused {
    ($result:expr, $pattern:pat $(if $guard:expr)?) => {
        match $result {
            Err($pattern) $(if $guard)? => {}
            other => panic!(
                "expected a refusal matching {}, got {other:?}",
                stringify!($pattern)
            ),
        }
    };
}

// ---- genesis and signer sets ----

#[test]
fn genesis_refuses_bad_sets_and_an_outside_creator() {
    let alice = SecretKey::generate().unwrap();
    let bob = SecretKey::generate().unwrap();
    let check = |set: SignerSet| ActiveSet::validate(&set).map(|_| ());
    assert_refused!(
        check(SignerSet {
            version: 1,
            threshold: 0,
            signers: vec![entry("alice", &alice)],
        }),
        Refusal::Threshold { .. }
    );
    assert_refused!(
        check(SignerSet {
            version: 1,
            threshold: 2,
            signers: vec![entry("alice", &alice)],
        }),
        Refusal::Threshold { .. }
    );
    assert_refused!(
        check(SignerSet {
            version: 1,
            threshold: 1,
            signers: vec![],
        }),
        Refusal::SignerCount { signers: 0 }
    );
    assert_refused!(
        check(SignerSet {
            version: 1,
            threshold: 1,
            signers: vec![entry("alice", &alice), entry("ALICE", &bob)],
        }),
        Refusal::DuplicateSignerName { .. }
    );
    assert_refused!(
        check(SignerSet {
            version: 1,
            threshold: 1,
            signers: vec![entry("alice", &alice), entry("bob", &alice)],
        }),
        Refusal::DuplicateSignerKey { .. }
    );
    let mut weak = entry("weak", &alice);
    weak.public_key = format!("01{}", "00".repeat(31)); // the identity point: small order
    assert_refused!(check(SignerSet {
            version: 1,
            threshold: 1,
            signers: vec![weak],
        }), Refusal::SignerKey { reason, .. } if reason.contains("weak"));
    let mut mismatched = entry("alice", &alice);
    mismatched.key_id = bob.public().key_id().to_string();
    assert_refused!(
        check(SignerSet {
            version: 1,
            threshold: 1,
            signers: vec![mismatched],
        }),
        Refusal::SignerKeyId { .. }
    );
    let full = ActiveSet::validate(&SignerSet {
        version: 1,
        threshold: 2,
        signers: vec![entry("alice", &alice), entry("bob", &bob)],
    })
    .unwrap();
    let warnings = full.threshold_warnings(false);
    assert!(warnings[0].contains("one lost key freezes"), "{warnings:?}");
    assert!(
        warnings[1].contains("no proposal can commit"),
        "{warnings:?}"
    );
    assert_eq!(full.threshold_warnings(true).len(), 1);

    // A creator outside the set, and a genesis signature over another ledger, are refused.
    let desk = desk();
    let outsider = SecretKey::generate().unwrap();
    let set_json = desk.governance.set_json.clone();
    let policy = Policy::default();
    let make = |ledger: Uuid, key: &SecretKey| LedgerCreated {
        format: LEDGER_FORMAT.into(),
        signer_set_json: set_json.clone(),
        policy_version: 1,
        policy_json: policy.canonical_json(),
        policy_hash: policy.hash_hex(),
        signature: seal_signature(
            key,
            genesis_message(
                &ledger,
                &set_json,
                &policy.canonical_json(),
                &policy.hash_hex(),
            ),
        ),
    };
    assert_refused!(
        Governance::genesis(desk.ledger_id, &make(desk.ledger_id, &outsider)),
        Refusal::CreatorNotInSet { .. }
    );
    assert_refused!(
        Governance::genesis(desk.ledger_id, &make(Uuid::now_v7(), desk.key("bob"))),
        Refusal::GenesisMessage
    );
}

// ---- propose ----

#[test]
fn a_signer_proposes_and_the_proposal_is_pending() {
    let desk = desk();
    let state = given_roll(&desk, "bob", 9);
    assert_eq!(state.status, Status::Pending);
    assert_eq!(state.recorded.terms.verdict.as_deref(), Some("pass"));
    assert_eq!(
        state.expires_at - state.created_at,
        Duration::seconds(14_400)
    );
}

#[test]
fn a_failing_roll_is_recorded_as_failed_and_can_never_be_signed() {
    let desk = desk();
    let mut state = given_roll(&desk, "bob", 12);
    assert_eq!(state.status, Status::Failed);
    assert_eq!(state.recorded.terms.verdict.as_deref(), Some("fail"));
    assert_refused!(
        when_signed(&desk, &mut state, "alice", t0()),
        Refusal::Closed {
            action: "sign",
            status: Status::Failed,
            ..
        }
    );
    let veto = seal_signature(
        desk.key("alice"),
        message_for(
            desk.ledger_id,
            &state,
            Purpose::Veto,
            &head_after(&state),
            Some("no"),
        ),
    );
    assert_refused!(
        decide_reject(
            &desk.governance,
            &state,
            veto,
            "no",
            t0(),
            &mut at_head(&state)
        ),
        Refusal::Closed {
            action: "reject",
            status: Status::Failed,
            ..
        }
    );
}

/// A stored report is usually byte-identical to a fresh evaluation's serialization, and the
/// checker compares bytes first; a report in canonical form with other numbers must still agree
/// by value, within the tolerance, and anything else must be refused with the same messages.
/// The same values in another spelling (pretty-printed) are refused: reports have one spelling
/// (docs/audit-format.md, C12).
#[test]
fn a_stored_report_in_other_bytes_is_compared_by_value() {
    let desk = desk();
    let (draft, _) = ProposalDraft::roll(
        &desk.governance,
        Uuid::now_v7(),
        roll_body(9, t0()),
        &Draws::none(),
        t0(),
    )
    .unwrap();
    let propose = |report: String| {
        let mut draft = draft.clone();
        draft.terms.report_json = Some(report);
        let signature = seal_signature(desk.key("bob"), draft.message(&first_head()));
        decide_propose(
            &desk.governance,
            &draft,
            signature,
            &mut AtHead::new(first_head()),
            &LayerBook::default(),
        )
    };
    let stored = draft.terms.report_json.clone().unwrap();
    assert!(propose(stored.clone()).is_ok());
    let value: serde_json::Value = serde_json::from_str(&stored).unwrap();
    let pretty = serde_json::to_string_pretty(&value).unwrap();
    assert_ne!(pretty, stored);
    assert_refused!(propose(pretty), Refusal::ReportUnparsable { reason } if reason.contains("canonical"));
    // A last-digit difference inside the tolerance is accepted; one above it is not (each
    // written in the canonical form, the key order kept).
    let wacc = value["metrics"]["wacc"].as_f64().unwrap();
    let with_wacc = |new: f64| {
        let old = format!("\"wacc\":{}", serde_json::to_string(&wacc).unwrap());
        assert!(stored.contains(&old), "{old}");
        stored.replacen(
            &old,
            &format!("\"wacc\":{}", serde_json::to_string(&new).unwrap()),
            1,
        )
    };
    assert!(propose(with_wacc(wacc * (1.0 + 1e-12))).is_ok());
    assert_refused!(propose(with_wacc(wacc * (1.0 + 1e-6))), Refusal::ReportDiffers { difference } if difference.contains("metrics.wacc"));
    // A report that does not parse is named as such, before the body is judged.
    assert_refused!(propose("{}".into()), Refusal::ReportUnparsable { .. });
    let mut broken = draft.clone();
    broken.terms.body = "not toml".into();
    broken.terms.report_json = Some("[]".into());
    let signature = seal_signature(desk.key("bob"), broken.message(&first_head()));
    assert_refused!(
        decide_propose(
            &desk.governance,
            &broken,
            signature,
            &mut AtHead::new(first_head()),
            &LayerBook::default()
        ),
        Refusal::ReportUnparsable { .. }
    );
    let mut broken = draft.clone();
    broken.terms.body = "not toml".into();
    let signature = seal_signature(desk.key("bob"), broken.message(&first_head()));
    assert_refused!(
        decide_propose(
            &desk.governance,
            &broken,
            signature,
            &mut AtHead::new(first_head()),
            &LayerBook::default()
        ),
        Refusal::BodyInvalid { .. }
    );
}

#[test]
fn an_outsider_cannot_propose_and_forged_proposals_are_refused() {
    let desk = desk();
    let (draft, _) = ProposalDraft::roll(
        &desk.governance,
        Uuid::now_v7(),
        roll_body(9, t0()),
        &Draws::none(),
        t0(),
    )
    .unwrap();
    let outsider = SecretKey::generate().unwrap();
    assert_refused!(
        decide_propose(
            &desk.governance,
            &draft,
            seal_signature(&outsider, draft.message(&first_head())),
            &mut AtHead::new(first_head()),
            &LayerBook::default()
        ),
        Refusal::ProposerNotInSet { set_version: 1, .. }
    );
    // Bob's key id on a message signed by alice.
    let mut forged = seal_signature(desk.key("alice"), draft.message(&first_head()));
    forged.key_id = desk.key("bob").public().key_id().to_string();
    assert_refused!(
        decide_propose(
            &desk.governance,
            &draft,
            forged,
            &mut AtHead::new(first_head()),
            &LayerBook::default()
        ),
        Refusal::SignatureInvalid { .. }
    );
    // A report that does not match the proposal.
    let mut doctored = draft.clone();
    doctored.terms.report_json = Some(
        doctored
            .terms
            .report_json
            .unwrap()
            .replace("\"contracts_max\":9", "\"contracts_max\":90"),
    );
    assert_refused!(
        decide_propose(
            &desk.governance,
            &doctored,
            seal_signature(desk.key("bob"), doctored.message(&first_head())),
            &mut AtHead::new(first_head()),
            &LayerBook::default()
        ),
        Refusal::ReportDiffers { .. }
    );
    // A signature for a different draft (other proposal id) does not carry over.
    let mut other = draft.clone();
    other.terms.proposal_id = Uuid::now_v7().to_string();
    assert_refused!(
        decide_propose(
            &desk.governance,
            &other,
            seal_signature(desk.key("bob"), draft.message(&first_head())),
            &mut AtHead::new(first_head()),
            &LayerBook::default()
        ),
        Refusal::Misbound {
            mismatch: Mismatch::Proposal { .. },
            ..
        }
    );
}

// ---- sign and commit ----

#[test]
fn two_of_three_commit_when_the_second_co_signer_signs() {
    let desk = desk();
    let mut state = given_roll(&desk, "bob", 9);
    let first = when_signed(&desk, &mut state, "alice", t0() + Duration::minutes(5)).unwrap();
    assert_eq!(types(&first), vec!["proposal.signed"]);
    let tally_now = tally(&desk.governance, &state).unwrap();
    assert_eq!((tally_now.counted.len(), tally_now.satisfied), (1, false));
    assert_eq!(tally_now.missing, vec!["carol"]);
    let second = when_signed(&desk, &mut state, "carol", t0() + Duration::minutes(6)).unwrap();
    assert_eq!(
        types(&second),
        vec!["proposal.signed", "proposal.committed"]
    );
    let Event::ProposalCommitted(commit) = &second[1] else {
        unreachable!()
    };
    assert_eq!(
        commit.counted_signers,
        vec![
            desk.key("alice").public().key_id().to_string(),
            desk.key("carol").public().key_id().to_string()
        ]
    );
    assert_eq!(state.status, Status::Committed);
    assert_refused!(
        when_signed(&desk, &mut state, "carol", t0()),
        Refusal::Closed {
            status: Status::Committed,
            ..
        }
    );
}

#[test]
fn the_proposer_does_not_count_unless_the_policy_says_so() {
    let desk = desk();
    let mut state = given_roll(&desk, "bob", 9);
    assert_refused!(
        when_signed(&desk, &mut state, "bob", t0()),
        Refusal::ProposerSignedAlready {
            proposer_counts: false,
            ..
        }
    );
    let mut policy = Policy::default();
    policy.approval.proposer_counts = true;
    let lenient = desk_with(&["alice", "bob", "carol"], 2, policy);
    let mut state = given_roll(&lenient, "bob", 9);
    let events = when_signed(&lenient, &mut state, "alice", t0()).unwrap();
    assert_eq!(
        types(&events),
        vec!["proposal.signed", "proposal.committed"],
        "bob + alice make 2"
    );
}

#[test]
fn outsiders_duplicates_and_replays_are_refused_and_not_counted() {
    let desk = desk();
    let mut state = given_roll(&desk, "bob", 9);
    let outsider = SecretKey::generate().unwrap();
    let signature = seal_signature(
        &outsider,
        message_for(
            desk.ledger_id,
            &state,
            Purpose::Cosign,
            &head_after(&state),
            None,
        ),
    );
    assert_refused!(
        decide_sign(
            &desk.governance,
            &state,
            signature,
            t0(),
            &mut at_head(&state)
        ),
        Refusal::NotASigner {
            set_version: 1,
            action: "sign",
            ..
        }
    );
    when_signed(&desk, &mut state, "alice", t0()).unwrap();
    assert_refused!(
        when_signed(&desk, &mut state, "alice", t0()),
        Refusal::SignedAlready { .. }
    );
    assert_eq!(tally(&desk.governance, &state).unwrap().counted.len(), 1);

    // Replays: alice's co-signature from another proposal, another ledger, another set version,
    // another purpose: each fails for carol's proposal.
    let other = given_roll(&desk, "bob", 8);
    let carol = desk.key("carol");
    let for_other = seal_signature(
        carol,
        message_for(
            desk.ledger_id,
            &other,
            Purpose::Cosign,
            &head_after(&other),
            None,
        ),
    );
    assert_refused!(
        decide_sign(
            &desk.governance,
            &state,
            for_other,
            t0(),
            &mut at_head(&state)
        ),
        Refusal::Misbound {
            mismatch: Mismatch::Proposal { .. },
            ..
        }
    );
    let foreign_ledger = seal_signature(
        carol,
        message_for(
            Uuid::now_v7(),
            &state,
            Purpose::Cosign,
            &head_after(&state),
            None,
        ),
    );
    assert_refused!(
        decide_sign(
            &desk.governance,
            &state,
            foreign_ledger,
            t0(),
            &mut at_head(&state)
        ),
        Refusal::Misbound {
            mismatch: Mismatch::Ledger { .. },
            ..
        }
    );
    let wrong_version = seal_signature(
        carol,
        rollbook::crypto::canonical::signed_message(
            Purpose::Cosign,
            &desk.ledger_id,
            &state.id,
            2,
            &state.digest,
            &head_after(&state),
            None,
        ),
    );
    assert_refused!(
        decide_sign(
            &desk.governance,
            &state,
            wrong_version,
            t0(),
            &mut at_head(&state)
        ),
        Refusal::Misbound {
            mismatch: Mismatch::SignerSetVersion {
                found: 2,
                expected: 1
            },
            ..
        }
    );
    let wrong_purpose = seal_signature(
        carol,
        message_for(
            desk.ledger_id,
            &state,
            Purpose::Withdraw,
            &head_after(&state),
            None,
        ),
    );
    assert_refused!(
        decide_sign(
            &desk.governance,
            &state,
            wrong_purpose,
            t0(),
            &mut at_head(&state)
        ),
        Refusal::Misbound {
            mismatch: Mismatch::Purpose {
                found: Purpose::Withdraw,
                expected: Purpose::Cosign
            },
            ..
        }
    );
}

#[test]
fn a_malleated_signature_is_refused() {
    let desk = desk();
    let state = given_roll(&desk, "bob", 9);
    let mut signature = cosign(&desk, &state, "alice");
    // S + L: the same point equation holds for the non-canonical scalar; verify_strict refuses it.
    let mut bytes = rollbook::crypto::from_hex(&signature.signature).unwrap();
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = bytes[32 + i] as u16 + L[i] as u16 + carry;
        bytes[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    signature.signature = to_hex(&bytes);
    assert_refused!(
        decide_sign(
            &desk.governance,
            &state,
            signature,
            t0(),
            &mut at_head(&state)
        ),
        Refusal::SignatureInvalid { .. }
    );
}

// ---- expiry, veto, withdrawal ----

#[test]
fn nothing_can_be_done_to_an_expired_proposal() {
    let desk = desk();
    let mut state = given_roll(&desk, "bob", 9);
    let late = state.expires_at + Duration::seconds(1);
    assert_eq!(state.effective_status(late), Status::Expired);
    assert_eq!(
        state.effective_status(state.expires_at),
        Status::Pending,
        "expiry is exclusive of its instant"
    );
    assert_refused!(
        when_signed(&desk, &mut state, "alice", late),
        Refusal::Expired { .. }
    );
    let veto = seal_signature(
        desk.key("alice"),
        message_for(
            desk.ledger_id,
            &state,
            Purpose::Veto,
            &head_after(&state),
            Some("late"),
        ),
    );
    assert_refused!(
        decide_reject(
            &desk.governance,
            &state,
            veto,
            "late",
            late,
            &mut at_head(&state)
        ),
        Refusal::Expired { .. }
    );
    let withdrawal = seal_signature(
        desk.key("bob"),
        message_for(
            desk.ledger_id,
            &state,
            Purpose::Withdraw,
            &head_after(&state),
            None,
        ),
    );
    assert_refused!(
        decide_withdraw(
            &desk.governance,
            &state,
            withdrawal,
            late,
            &mut at_head(&state)
        ),
        Refusal::Expired { .. }
    );
}

#[test]
fn any_signer_can_veto_with_a_reason_and_a_veto_is_final() {
    let desk = desk();
    let mut state = given_roll(&desk, "bob", 9);
    let reason = "quotes are stale";
    let veto = seal_signature(
        desk.key("carol"),
        message_for(
            desk.ledger_id,
            &state,
            Purpose::Veto,
            &head_after(&state),
            Some(reason),
        ),
    );
    assert_refused!(
        decide_reject(
            &desk.governance,
            &state,
            veto.clone(),
            "another reason",
            t0(),
            &mut at_head(&state)
        ),
        Refusal::Misbound {
            mismatch: Mismatch::VetoReason,
            ..
        }
    );
    assert_refused!(
        decide_reject(
            &desk.governance,
            &state,
            veto.clone(),
            " ",
            t0(),
            &mut at_head(&state)
        ),
        Refusal::VetoReasonLength
    );
    let event = decide_reject(
        &desk.governance,
        &state,
        veto,
        reason,
        t0(),
        &mut at_head(&state),
    )
    .unwrap();
    state.evolve(&event, &stored(&desk, 3, 2, &event, t0()));
    assert_eq!(state.status, Status::Rejected);
    assert_refused!(
        when_signed(&desk, &mut state, "alice", t0()),
        Refusal::Closed {
            status: Status::Rejected,
            ..
        }
    );
    let outsider = SecretKey::generate().unwrap();
    let fresh = given_roll(&desk, "bob", 9);
    let veto = seal_signature(
        &outsider,
        message_for(
            desk.ledger_id,
            &fresh,
            Purpose::Veto,
            &head_after(&fresh),
            Some("x"),
        ),
    );
    assert_refused!(
        decide_reject(
            &desk.governance,
            &fresh,
            veto,
            "x",
            t0(),
            &mut at_head(&fresh)
        ),
        Refusal::NotASigner { action: "veto", .. }
    );
}

#[test]
fn only_the_proposer_can_withdraw() {
    let desk = desk();
    let mut state = given_roll(&desk, "bob", 9);
    let by_alice = seal_signature(
        desk.key("alice"),
        message_for(
            desk.ledger_id,
            &state,
            Purpose::Withdraw,
            &head_after(&state),
            None,
        ),
    );
    assert_refused!(decide_withdraw(&desk.governance, &state, by_alice, t0(), &mut at_head(&state)), Refusal::NotTheProposer { proposer, .. } if proposer == "bob");
    let by_bob = seal_signature(
        desk.key("bob"),
        message_for(
            desk.ledger_id,
            &state,
            Purpose::Withdraw,
            &head_after(&state),
            None,
        ),
    );
    let event =
        decide_withdraw(&desk.governance, &state, by_bob, t0(), &mut at_head(&state)).unwrap();
    state.evolve(&event, &stored(&desk, 3, 2, &event, t0()));
    assert_eq!(state.status, Status::Withdrawn);
    assert_refused!(
        when_signed(&desk, &mut state, "alice", t0()),
        Refusal::Closed {
            status: Status::Withdrawn,
            ..
        }
    );
}

// ---- governance ----

fn given_motion(desk: &Desk, proposer: &str, draft: ProposalDraft) -> ProposalState {
    let event = decide_propose(
        &desk.governance,
        &draft,
        seal_signature(desk.key(proposer), draft.message(&first_head())),
        &mut AtHead::new(first_head()),
        &LayerBook::default(),
    )
    .expect("motion accepted");
    let Event::ProposalRecorded(recorded) = &event else {
        panic!()
    };
    ProposalState::from_recorded(recorded.clone(), &stored(desk, 2, 1, &event, t0())).unwrap()
}

#[test]
fn adding_a_signer_needs_both_sets_and_the_new_key_and_pending_rolls_count_as_expired() {
    let mut desk = desk();
    desk.keys
        .push(("dave".into(), SecretKey::generate().unwrap()));
    let dave = desk.key("dave");
    let mut next = desk.governance.set.to_signer_set();
    next.version = 2;
    next.threshold = 3;
    next.signers.push(entry("dave", dave));
    let next = ActiveSet::validate(&next).unwrap();
    let mut motion = given_motion(
        &desk,
        "bob",
        ProposalDraft::signer_set(&desk.governance, Uuid::now_v7(), &next, t0()),
    );
    let pending = given_roll(&desk, "bob", 9);
    // alice and carol: K of the old set, but v2 needs 3 of 4 and dave's own signature.
    when_signed(&desk, &mut motion, "alice", t0()).unwrap();
    let partial = tally(&desk.governance, &motion).unwrap();
    assert!(!partial.satisfied);
    when_signed(&desk, &mut motion, "carol", t0()).unwrap();
    let still = tally(&desk.governance, &motion).unwrap();
    assert!(!still.satisfied, "the new key has not signed");
    assert!(still.pending_requirement.unwrap().contains("dave"));
    let signature = cosign(&desk, &motion, "dave");
    let outcome = decide_sign(
        &desk.governance,
        &motion,
        signature,
        t0(),
        &mut at_head(&motion),
    )
    .unwrap();
    // No expiry event: the pending roll counts as expired once its set is replaced.
    assert_eq!(
        types(&outcome.events),
        vec![
            "proposal.signed",
            "proposal.committed",
            "ledger.signer_set_adopted"
        ]
    );
    // The adoption moves the governance; the old proposal is expired and nothing acts on it.
    desk.governance.apply(&outcome.events[2]).unwrap();
    assert_eq!(
        (desk.governance.set.version, desk.governance.set.threshold),
        (2, 3)
    );
    assert_eq!(pending.status, Status::Pending, "no event closed it");
    assert_eq!(
        pending.status_under(t0(), &desk.governance),
        Status::Expired
    );
    let mut old = pending.clone();
    assert_refused!(
        when_signed(&desk, &mut old, "alice", t0()),
        Refusal::GovernanceNotInForce { .. }
    );
    let veto = seal_signature(
        desk.key("alice"),
        message_for(
            desk.ledger_id,
            &pending,
            Purpose::Veto,
            &head_after(&pending),
            Some("stale"),
        ),
    );
    assert_refused!(
        decide_reject(
            &desk.governance,
            &pending,
            veto,
            "stale",
            t0(),
            &mut at_head(&pending)
        ),
        Refusal::GovernanceNotInForce { .. }
    );
    let withdrawal = seal_signature(
        desk.key("bob"),
        message_for(
            desk.ledger_id,
            &pending,
            Purpose::Withdraw,
            &head_after(&pending),
            None,
        ),
    );
    assert_refused!(
        decide_withdraw(
            &desk.governance,
            &pending,
            withdrawal,
            t0(),
            &mut at_head(&pending)
        ),
        Refusal::GovernanceNotInForce { .. }
    );
}

/// The next set `desk`'s v1 with `edit` applied, as version 2.
fn next_set(desk: &Desk, edit: impl FnOnce(&mut SignerSet)) -> ActiveSet {
    let mut next = desk.governance.set.to_signer_set();
    next.version = 2;
    edit(&mut next);
    ActiveSet::validate(&next).unwrap()
}

fn counted_names(desk: &Desk, counted: &[String]) -> Vec<String> {
    counted
        .iter()
        .map(|key_id| {
            desk.governance
                .set
                .by_key_id(key_id)
                .map_or_else(|| key_id.clone(), |member| member.name.clone())
        })
        .collect()
}

/// Issue 19, case 9: 2 of 3, proposer not counted. alice proposes removing carol; carol's own
/// signature does not count for her removal, alice's does (maker-checker does not apply to
/// removing someone else), so bob's signature commits it without carol.
#[test]
fn a_removed_signer_cannot_block_their_removal_and_can_no_longer_sign() {
    let mut desk = desk();
    let next = next_set(&desk, |next| {
        next.threshold = 1;
        next.signers.retain(|s| s.name != "carol");
    });
    let mut motion = given_motion(
        &desk,
        "alice",
        ProposalDraft::signer_set(&desk.governance, Uuid::now_v7(), &next, t0()),
    );
    let waiting = tally(&desk.governance, &motion).unwrap();
    assert_eq!(
        (counted_names(&desk, &waiting.counted), waiting.threshold),
        (vec!["alice".to_string()], 2)
    );
    assert_eq!(waiting.missing, vec!["bob"], "carol is not needed");
    let by_carol = when_signed(&desk, &mut motion, "carol", t0()).unwrap();
    assert_eq!(
        types(&by_carol),
        vec!["proposal.signed"],
        "carol does not count"
    );
    assert_eq!(tally(&desk.governance, &motion).unwrap().counted.len(), 1);
    let events = when_signed(&desk, &mut motion, "bob", t0()).unwrap();
    assert_eq!(
        types(&events)[1..3],
        ["proposal.committed", "ledger.signer_set_adopted"]
    );
    let Event::ProposalCommitted(commit) = &events[1] else {
        unreachable!()
    };
    assert_eq!(
        counted_names(&desk, &commit.counted_signers),
        ["alice", "bob"]
    );
    assert_eq!(commit.threshold, 2);
    desk.governance.apply(&events[2]).unwrap();
    let mut state = given_roll(&desk, "bob", 9);
    assert_refused!(
        when_signed(&desk, &mut state, "carol", t0()),
        Refusal::NotASigner {
            set_version: 2,
            action: "sign",
            ..
        }
    );
    when_signed(&desk, &mut state, "alice", t0()).unwrap();
    assert_eq!(
        state.status,
        Status::Committed,
        "1 of the remaining 2, not the proposer"
    );
}

/// The rule concerns motions that remove or rotate signers only: a roll, a policy motion and a
/// set motion that only adds keep maker-checker and K.
#[test]
fn rolls_and_other_motions_keep_the_old_rules() {
    let mut desk = desk();
    let mut roll = given_roll(&desk, "alice", 9);
    let first = when_signed(&desk, &mut roll, "bob", t0()).unwrap();
    assert_eq!(
        types(&first),
        vec!["proposal.signed"],
        "alice does not count"
    );
    let second = when_signed(&desk, &mut roll, "carol", t0()).unwrap();
    assert_eq!(types(&second)[1], "proposal.committed");
    desk.keys
        .push(("dave".into(), SecretKey::generate().unwrap()));
    let dave = entry("dave", desk.key("dave"));
    let next = next_set(&desk, |next| next.signers.push(dave));
    let mut motion = given_motion(
        &desk,
        "alice",
        ProposalDraft::signer_set(&desk.governance, Uuid::now_v7(), &next, t0()),
    );
    when_signed(&desk, &mut motion, "dave", t0()).unwrap();
    let only_bob = when_signed(&desk, &mut motion, "bob", t0()).unwrap();
    assert_eq!(
        types(&only_bob),
        vec!["proposal.signed"],
        "1 of 2: alice does not count"
    );
    let events = when_signed(&desk, &mut motion, "carol", t0()).unwrap();
    assert_eq!(types(&events)[1], "proposal.committed");
}

/// K = n: removing one signer needs every other (K capped at n - 1); the proposer may remove
/// themselves (their signature then does not count); a rotated key is a departure too.
#[test]
fn the_count_is_k_capped_at_the_others_and_counts_only_who_stays() {
    let desk = desk_with(&["alice", "bob", "carol"], 3, Policy::default());
    let without_carol = next_set(&desk, |next| {
        next.threshold = 2;
        next.signers.retain(|s| s.name != "carol");
    });
    let mut motion = given_motion(
        &desk,
        "alice",
        ProposalDraft::signer_set(&desk.governance, Uuid::now_v7(), &without_carol, t0()),
    );
    assert_eq!(tally(&desk.governance, &motion).unwrap().threshold, 2);
    let events = when_signed(&desk, &mut motion, "bob", t0()).unwrap();
    assert_eq!(
        types(&events)[1],
        "proposal.committed",
        "alice and bob: 2 of 3 - 1"
    );

    // alice removes herself: bob and carol decide, alice's signature does not count.
    let desk = self::desk();
    let without_alice = next_set(&desk, |next| next.signers.retain(|s| s.name != "alice"));
    let mut motion = given_motion(
        &desk,
        "alice",
        ProposalDraft::signer_set(&desk.governance, Uuid::now_v7(), &without_alice, t0()),
    );
    assert!(tally(&desk.governance, &motion).unwrap().counted.is_empty());
    assert_eq!(
        types(&when_signed(&desk, &mut motion, "bob", t0()).unwrap()).len(),
        1
    );
    let events = when_signed(&desk, &mut motion, "carol", t0()).unwrap();
    let Event::ProposalCommitted(commit) = &events[1] else {
        panic!("{:?}", types(&events))
    };
    assert_eq!(
        counted_names(&desk, &commit.counted_signers),
        ["bob", "carol"]
    );

    // carol's key rotated: her old key does not count, the new one must co-sign.
    let mut desk = self::desk();
    desk.keys
        .push(("carol2".into(), SecretKey::generate().unwrap()));
    let rotated = entry("carol", desk.key("carol2"));
    let next = next_set(&desk, |next| {
        next.signers.retain(|s| s.name != "carol");
        next.signers.push(rotated);
    });
    let mut motion = given_motion(
        &desk,
        "alice",
        ProposalDraft::signer_set(&desk.governance, Uuid::now_v7(), &next, t0()),
    );
    when_signed(&desk, &mut motion, "carol", t0()).unwrap();
    when_signed(&desk, &mut motion, "carol2", t0()).unwrap();
    let still = tally(&desk.governance, &motion).unwrap();
    assert!(!still.satisfied, "alice alone of the stayers: {still:?}");
    let events = when_signed(&desk, &mut motion, "bob", t0()).unwrap();
    assert_eq!(types(&events)[1], "proposal.committed");
}

/// K = 1: the proposer counts, but a departure still needs a co-signer who stays; a new key
/// the proposer holds (its proof of possession) does not make one.
#[test]
fn a_departure_needs_a_co_signer_who_stays() {
    let mut desk = desk_with(&["alice", "bob", "carol"], 1, Policy::default());
    desk.keys
        .push(("zed".into(), SecretKey::generate().unwrap()));
    let zed = entry("zed", desk.key("zed"));
    let next = next_set(&desk, |next| {
        next.signers.retain(|s| s.name != "carol");
        next.signers.push(zed);
    });
    let mut motion = given_motion(
        &desk,
        "alice",
        ProposalDraft::signer_set(&desk.governance, Uuid::now_v7(), &next, t0()),
    );
    let by_zed = when_signed(&desk, &mut motion, "zed", t0()).unwrap();
    assert_eq!(
        types(&by_zed),
        vec!["proposal.signed"],
        "alice and her own new key"
    );
    let by_carol = when_signed(&desk, &mut motion, "carol", t0()).unwrap();
    assert_eq!(types(&by_carol), vec!["proposal.signed"], "carol departs");
    let events = when_signed(&desk, &mut motion, "bob", t0()).unwrap();
    assert_eq!(types(&events)[1], "proposal.committed");
}

/// Several departures at once are never easier than one: the count stays K capped at n - 1,
/// so a motion that leaves fewer signers than that is refused when proposed (one signer
/// cannot rotate the others' keys to keys they hold).
#[test]
fn a_motion_leaving_too_few_signers_is_refused() {
    let mut desk = desk();
    desk.keys
        .push(("bob2".into(), SecretKey::generate().unwrap()));
    desk.keys
        .push(("carol2".into(), SecretKey::generate().unwrap()));
    let (bob2, carol2) = (
        entry("bob", desk.key("bob2")),
        entry("carol", desk.key("carol2")),
    );
    let takeover = next_set(&desk, |next| {
        next.signers.retain(|s| s.name == "alice");
        next.signers.extend([bob2, carol2]);
    });
    let draft = ProposalDraft::signer_set(&desk.governance, Uuid::now_v7(), &takeover, t0());
    assert_refused!(
        decide_propose(
            &desk.governance,
            &draft,
            seal_signature(desk.key("alice"), draft.message(&first_head())),
            &mut AtHead::new(first_head()),
            &LayerBook::default()
        ),
        Refusal::TooFewSignersStay {
            staying: 0,
            needed: 1,
            ..
        }
    );
    // 2 of 2: one signer cannot remove the other alone.
    let pair = desk_with(&["alice", "bob"], 2, Policy::default());
    let alone = next_set(&pair, |next| {
        next.threshold = 1;
        next.signers.truncate(1);
    });
    let draft = ProposalDraft::signer_set(&pair.governance, Uuid::now_v7(), &alone, t0());
    assert_refused!(
        decide_propose(
            &pair.governance,
            &draft,
            seal_signature(pair.key("alice"), draft.message(&first_head())),
            &mut AtHead::new(first_head()),
            &LayerBook::default()
        ),
        Refusal::TooFewSignersStay {
            staying: 0,
            needed: 1,
            ..
        }
    );
    // 2 of 5 removing three leaves two: enough.
    let five = desk_with(&["a", "b", "c", "d", "e"], 2, Policy::default());
    let two_stay = next_set(&five, |next| {
        next.signers.truncate(2);
    });
    given_motion(
        &five,
        "a",
        ProposalDraft::signer_set(&five.governance, Uuid::now_v7(), &two_stay, t0()),
    );
}

#[test]
fn a_policy_motion_commits_with_k_signatures_and_changes_the_policy() {
    let mut desk = desk();
    let mut next = Policy::default();
    next.approval.proposal_ttl_seconds = 3600;
    let mut motion = given_motion(
        &desk,
        "alice",
        ProposalDraft::policy(&desk.governance, Uuid::now_v7(), &next, t0()),
    );
    when_signed(&desk, &mut motion, "bob", t0()).unwrap();
    let events = when_signed(&desk, &mut motion, "carol", t0()).unwrap();
    assert_eq!(
        types(&events),
        vec![
            "proposal.signed",
            "proposal.committed",
            "ledger.policy_adopted"
        ]
    );
    desk.governance.apply(&events[2]).unwrap();
    assert_eq!(desk.governance.policy_version, 2);
    assert_eq!(desk.governance.policy_hash, next.hash_hex());
    let state = given_roll(&desk, "bob", 9);
    assert_eq!(state.expires_at - state.created_at, Duration::seconds(3600));
    // The same policy again is refused.
    let same = ProposalDraft::policy(&desk.governance, Uuid::now_v7(), &next, t0());
    assert_refused!(
        decide_propose(
            &desk.governance,
            &same,
            seal_signature(desk.key("alice"), same.message(&first_head())),
            &mut AtHead::new(first_head()),
            &LayerBook::default()
        ),
        Refusal::SamePolicy
    );
}

// ---- refusal texts and verified signatures ----

/// The CLI prints a refusal's text: the variants keep the messages people already know.
#[test]
fn refusals_read_as_before() {
    let id = Uuid::parse_str("018f0000-0000-7000-8000-000000000001").unwrap();
    let cases = [
        (
            Refusal::ProposerSignedAlready {
                name: "bob".into(),
                proposal_id: id,
                proposer_counts: false,
            },
            "bob proposed 018f0000-0000-7000-8000-000000000001 and has signed it already; maker-checker: the proposer's signature does not count, other signers must co-sign",
        ),
        (
            Refusal::Closed {
                action: "sign",
                proposal_id: id,
                status: Status::Rejected,
            },
            "cannot sign proposal 018f0000-0000-7000-8000-000000000001: it was vetoed",
        ),
        (
            Refusal::NotASigner {
                key_id: "SHA256:x".into(),
                set_version: 2,
                names: vec!["alice".into(), "bob".into()],
                action: "veto",
            },
            "SHA256:x is not in signer set v2 (alice, bob); only its signers may veto",
        ),
        (
            Refusal::Misbound {
                key_id: "SHA256:x".into(),
                mismatch: Mismatch::Purpose {
                    found: Purpose::Withdraw,
                    expected: Purpose::Cosign,
                },
            },
            "SHA256:x presented a withdraw signature, not a cosign signature",
        ),
        (
            Refusal::StoredSignatureInvalid {
                seq: 7,
                source: Box::new(Refusal::SignatureInvalid {
                    key_id: "SHA256:x".into(),
                }),
            },
            "seq 7: a stored signature is invalid: signature of SHA256:x does not verify (strict ed25519)",
        ),
    ];
    for (refusal, text) in cases {
        assert_eq!(refusal.to_string(), text);
    }
}

/// Only a strict check fills `VerifiedSignatures`, and a set skips exactly its own triples:
/// a forged signature is refused whatever set the caller passes.
#[test]
fn verified_signatures_hold_only_what_verify_strict_accepted() {
    use rollbook::domain::approval::decide_sign_trusting;
    use rollbook::domain::governance::VerifiedSignatures;
    let desk = desk();
    let state = given_roll(&desk, "bob", 9);
    let good = cosign(&desk, &state, "alice");
    let mut forged = good.clone();
    let mut bytes = rollbook::crypto::from_hex(&forged.signature).unwrap();
    bytes[0] ^= 1;
    forged.signature = to_hex(&bytes);
    let triple = |envelope: &SignatureEnvelope| {
        (
            desk.key("alice").public(),
            rollbook::crypto::from_hex(&envelope.message).unwrap(),
            <[u8; 64]>::try_from(rollbook::crypto::from_hex(&envelope.signature).unwrap()).unwrap(),
        )
    };
    let verified = VerifiedSignatures::verify(&[triple(&good), triple(&forged)]);
    assert_refused!(
        decide_sign_trusting(
            &desk.governance,
            &state,
            forged,
            t0(),
            &mut at_head(&state),
            &verified
        ),
        Refusal::SignatureInvalid { .. }
    );
    let outcome = decide_sign_trusting(
        &desk.governance,
        &state,
        good,
        t0(),
        &mut at_head(&state),
        &verified,
    )
    .unwrap();
    assert_eq!(types(&outcome.events), vec!["proposal.signed"]);
}

/// Given a proposal whose id is spelt other than lowercase-hyphenated, when it is proposed, then
/// it is refused: signatures bind the id's 16 bytes, so a second spelling of one id would be a
/// second stream that a committed roll's signatures also verify for (a replay).
#[test]
fn a_proposal_id_in_another_spelling_is_refused() {
    let desk = desk();
    let id = Uuid::now_v7();
    let spellings = [
        id.hyphenated().to_string().to_uppercase(),
        id.simple().to_string(),
        id.braced().to_string(),
        id.urn().to_string(),
    ];
    for spelling in spellings {
        let (mut draft, _) = ProposalDraft::roll(
            &desk.governance,
            id,
            roll_body(9, t0()),
            &Draws::none(),
            t0(),
        )
        .unwrap();
        draft.terms.proposal_id = spelling.clone();
        let signature = seal_signature(desk.key("bob"), draft.message(&first_head()));
        assert_refused!(
            decide_propose(&desk.governance, &draft, signature, &mut AtHead::new(first_head()), &LayerBook::default()),
            Refusal::ProposalIdNotCanonical { proposal_id } if proposal_id == spelling
        );
    }
    // The canonical spelling of the same id is accepted.
    let (draft, _) = ProposalDraft::roll(
        &desk.governance,
        id,
        roll_body(9, t0()),
        &Draws::none(),
        t0(),
    )
    .unwrap();
    let signature = seal_signature(desk.key("bob"), draft.message(&first_head()));
    decide_propose(
        &desk.governance,
        &draft,
        signature,
        &mut AtHead::new(first_head()),
        &LayerBook::default(),
    )
    .expect("canonical id accepted");
}

/// The head the recordings of these tests follow: the genesis (hashes are not the point here;
/// tests/audit_rules.rs breaks bound heads against a real chain).
fn first_head() -> ChainHead {
    ChainHead {
        seq: 1,
        hash: [0xab; 32],
    }
}

/// The head a decision on `state` follows in these tests: its last event.
fn head_after(state: &ProposalState) -> ChainHead {
    ChainHead {
        seq: state.last_seq,
        hash: [0xcd; 32],
    }
}

fn at_head(state: &ProposalState) -> AtHead {
    AtHead::new(head_after(state))
}
