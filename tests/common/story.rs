//! Ledgers the library-level tests build through the service at chosen times (the store trusts
//! the caller's clock), so that every seq, hash and verdict is the same on every run.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rollbook::audit::export_jsonl_to;
use rollbook::crypto::keys::SecretKey;
use rollbook::domain::approval::{ProposalDraft, ProposalState};
use rollbook::domain::envelope::{format_timestamp, uuid_v7_at};
use rollbook::domain::events::{SignerEntry, SignerSet};
use rollbook::domain::governance::ActiveSet;
use rollbook::service::{self, Ledger};
use rollbook::sizing::{Policy, Proposal};
use rollbook::store::Store;
use uuid::Uuid;

use super::{entry, TestDb};

const EXAMPLE: &str = include_str!("../vectors/example-proposal.toml");

/// When these ledgers begin: ten minutes after the worked example was written (as_of 14:30),
/// before its execution window opens (14:45).
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 7, 14, 40, 0).unwrap()
}

/// The worked example requesting `contracts`, as it is proposed.
pub fn body(contracts: u32) -> String {
    let mut proposal = Proposal::from_toml_str(EXAMPLE).unwrap();
    proposal.set_contracts_requested(contracts);
    proposal.to_toml_string()
}

/// The story's signers: alice, bob and carol from genesis; dave joins by motion.
pub struct Keys {
    pub alice: SecretKey,
    pub bob: SecretKey,
    pub carol: SecretKey,
    pub dave: SecretKey,
}

impl Keys {
    pub fn generate() -> Keys {
        let new = || SecretKey::generate().unwrap();
        Keys {
            alice: new(),
            bob: new(),
            carol: new(),
            dave: new(),
        }
    }
}

/// A ledger with a proposal in every status and one governance change (2 of 3, then dave
/// joins: 2 of 4) that expires a pending roll (with no event: it was bound to the old set);
/// the ledger and the id of its committed roll. The keys of alice, bob and carol are valid
/// only before `lifetime_end` when it is given (every act of theirs lies before it; dave's key
/// has no lifetime). Seq by seq:
///  1 genesis | 2 failed roll | 3-6 committed roll (recorded, 2 signatures, commit) |
///  7-8 rejected | 9-10 withdrawn | 11-12 roll later expired (recorded, 1 signature) |
///  13-18 motion (recorded, 3 signatures, commit, adoption) | 19-20 pending roll (recorded,
///  1 signature).
pub async fn story(db: &TestDb, k: &Keys, lifetime_end: Option<DateTime<Utc>>) -> (Ledger, Uuid) {
    let store = Store::open(&db.url).await.unwrap().trusting_caller_clock(); // a ledger built at chosen times
    let set = ActiveSet::validate(&SignerSet {
        version: 1,
        threshold: 2,
        signers: [("alice", &k.alice), ("bob", &k.bob), ("carol", &k.carol)]
            .into_iter()
            .map(|(name, key)| SignerEntry {
                valid_before: lifetime_end.map(format_timestamp),
                ..entry(name, key)
            })
            .collect(),
    })
    .unwrap();
    let (ledger_id, _) = service::init(&store, &set, &Policy::default(), &k.alice, t0())
        .await
        .unwrap();
    let ledger = Ledger::new(store, ledger_id);
    let at = |seconds: i64| t0() + Duration::seconds(seconds);
    // failed
    ledger.propose_roll(body(12), &k.bob, at(1)).await.unwrap();
    // committed
    let (committed, _) = ledger.propose_roll(body(9), &k.bob, at(2)).await.unwrap();
    ledger.sign(committed.id, &k.alice, at(3)).await.unwrap();
    ledger.sign(committed.id, &k.carol, at(4)).await.unwrap();
    // rejected
    let (rejected, _) = ledger.propose_roll(body(8), &k.bob, at(5)).await.unwrap();
    ledger
        .reject(rejected.id, &k.carol, "quotes are stale", at(6))
        .await
        .unwrap();
    // withdrawn
    let (withdrawn, _) = ledger.propose_roll(body(7), &k.bob, at(7)).await.unwrap();
    ledger.withdraw(withdrawn.id, &k.bob, at(8)).await.unwrap();
    // expired by the governance change below
    let (to_expire, _) = ledger.propose_roll(body(6), &k.bob, at(9)).await.unwrap();
    ledger.sign(to_expire.id, &k.alice, at(10)).await.unwrap();
    // governance: add dave, 2 of 4
    let mut next = set.to_signer_set();
    next.version = 2;
    next.signers.push(entry("dave", &k.dave));
    let next = ActiveSet::validate(&next).unwrap();
    let motion = ledger
        .propose_motion(
            |g, now| Ok(ProposalDraft::signer_set(g, uuid_v7_at(now), &next, now)),
            &k.alice,
            at(11),
        )
        .await
        .unwrap();
    ledger.sign(motion.id, &k.bob, at(12)).await.unwrap();
    ledger.sign(motion.id, &k.carol, at(13)).await.unwrap();
    let adopted = ledger.sign(motion.id, &k.dave, at(14)).await.unwrap();
    assert!(adopted.committed);
    // pending under the new set
    let (pending, _) = ledger.propose_roll(body(5), &k.dave, at(15)).await.unwrap();
    ledger.sign(pending.id, &k.alice, at(16)).await.unwrap();
    (ledger, committed.id)
}

/// The JSONL export of `ledger` up to `tree_size` events (the head when `None`), exported at
/// 15:00 on the story's day, one string a line.
pub async fn jsonl_lines(ledger: &Ledger, tree_size: Option<u64>) -> Vec<String> {
    let mut out = Vec::new();
    export_jsonl_to(
        &ledger.store,
        ledger.ledger_id,
        1,
        tree_size,
        &mut out,
        "2026-05-07T15:00:00.000000Z",
    )
    .await
    .unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A 2-of-3 ledger (alice, bob, carol: the keys, in that order) with a roll of `contracts`
/// bob proposed at t0 + 1 s, pending.
pub async fn two_of_three_with_a_roll(
    db: &TestDb,
    contracts: u32,
) -> (Ledger, [SecretKey; 3], ProposalState) {
    let keys = [(); 3].map(|_| SecretKey::generate().unwrap());
    let store = Store::open(&db.url).await.unwrap().trusting_caller_clock(); // a ledger built at chosen times
    let set = ActiveSet::validate(&SignerSet {
        version: 1,
        threshold: 2,
        signers: ["alice", "bob", "carol"]
            .iter()
            .zip(&keys)
            .map(|(name, key)| entry(name, key))
            .collect(),
    })
    .unwrap();
    let (ledger_id, _) = service::init(&store, &set, &Policy::default(), &keys[0], t0())
        .await
        .unwrap();
    let ledger = Ledger::new(store, ledger_id);
    let (roll, _) = ledger
        .propose_roll(body(contracts), &keys[1], t0() + Duration::seconds(1))
        .await
        .unwrap();
    (ledger, keys, roll)
}
