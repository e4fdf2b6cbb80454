//! Concurrent clients on one ledger, on SQLite and PostgreSQL: whatever order their appends land
//! in, no event follows its proposal's close, the ledger verifies after every round, and what
//! each client was told is what the ledger says.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::TestDb;
use rollbook::audit::auditor::Auditor;
use rollbook::audit::VerifyError;
use rollbook::crypto::keys::SecretKey;
use rollbook::crypto::to_hex;
use rollbook::domain::approval::{ProposalDraft, SignOutcome, Status};
use rollbook::domain::events::{SignerEntry, SignerSet};
use rollbook::domain::governance::{ActiveSet, Governance};
use rollbook::service::{self, Ledger, ServiceError};
use rollbook::sizing::{Policy, Proposal};
use rollbook::store::Store;
use uuid::Uuid;

const EXAMPLE: &str = include_str!("vectors/example-proposal.toml");

/// Rounds of the R/M race per backend (the issue saw it within four to eleven rounds).
const RACE_ROUNDS: usize = 50;
/// Other pending rolls per round: a governance commit that reads every pending proposal reads
/// these too, which widens the window the race needs. (Few: every command re-verifies the
/// governance history, fifty adoptions long by the end.)
const OTHER_PENDING_ROLLS: usize = 6;
/// Rolls pending when the proposing and withdrawing loops start (enough to starve the former
/// governance commit, which expected the version of every pending proposal, on SQLite).
const CHURN_PENDING_ROLLS: usize = 64;

struct Desk {
    names: Vec<&'static str>,
    keys: Vec<SecretKey>,
}

impl Desk {
    fn new(names: &[&'static str]) -> Desk {
        Desk {
            names: names.to_vec(),
            keys: names
                .iter()
                .map(|_| SecretKey::generate().unwrap())
                .collect(),
        }
    }

    fn key(&self, name: &str) -> &SecretKey {
        let index = self.names.iter().position(|n| *n == name).unwrap();
        &self.keys[index]
    }

    fn set(&self, threshold: u32) -> ActiveSet {
        let signers = self
            .names
            .iter()
            .zip(&self.keys)
            .map(|(name, key)| SignerEntry {
                name: name.to_string(),
                role: None,
                public_key: to_hex(&key.public().as_bytes()),
                key_id: key.public().key_id().to_string(),
                valid_after: None,
                valid_before: None,
            })
            .collect();
        ActiveSet::validate(&SignerSet {
            version: 1,
            threshold,
            signers,
        })
        .unwrap()
    }
}

/// The worked example (9 contracts: passes) dated `now`.
fn roll_body(now: DateTime<Utc>) -> String {
    let mut proposal = Proposal::from_toml_str(EXAMPLE).unwrap();
    let as_of = Utc.with_ymd_and_hms(2026, 5, 7, 14, 30, 0).unwrap();
    proposal.shift_times(now - Duration::minutes(10) - as_of);
    proposal.set_contracts_requested(9);
    common::own_layer(&mut proposal);
    proposal.to_toml_string()
}

/// A ledger created on `db` by the first signer, and a second, separately opened client.
async fn two_clients(db: &TestDb, desk: &Desk, threshold: u32) -> (Ledger, Ledger) {
    let store = Store::open(&db.url).await.unwrap();
    service::init(
        &store,
        &desk.set(threshold),
        &Policy::default(),
        &desk.keys[0],
        Utc::now(),
    )
    .await
    .unwrap();
    let first = Ledger::open(store).await.unwrap();
    let second = Ledger::open(Store::open(&db.url).await.unwrap())
        .await
        .unwrap();
    (first, second)
}

async fn propose_roll(ledger: &Ledger, key: &SecretKey) -> Uuid {
    let now = Utc::now();
    let (state, _) = ledger.propose_roll(roll_body(now), key, now).await.unwrap();
    state.id
}

/// A policy motion whose next policy differs from the one in force (its time to live).
async fn propose_policy(ledger: &Ledger, key: &SecretKey, ttl_seconds: u64) -> Uuid {
    let state = ledger
        .propose_motion(
            |governance: &Governance, now| {
                let mut next = governance.policy.clone();
                next.approval.proposal_ttl_seconds = ttl_seconds;
                Ok(ProposalDraft::policy(
                    governance,
                    Uuid::now_v7(),
                    &next,
                    now,
                ))
            },
            key,
            Utc::now(),
        )
        .await
        .unwrap();
    state.id
}

/// The status a reader sees: folded from the proposal's stream under the governance in force.
async fn status(ledger: &Ledger, proposal_id: Uuid) -> Status {
    let governance = ledger.governance().await.unwrap();
    let state = ledger.proposal(proposal_id).await.unwrap();
    state.status_under(Utc::now(), &governance)
}

/// `rollbook verify`'s auditor (src/audit), kept across rounds and fed each round's new events:
/// the rules of a verification from genesis, without re-checking every earlier report.
struct Verifier {
    auditor: Auditor,
    verified_seq: u64,
}

impl Verifier {
    fn new() -> Verifier {
        Verifier {
            auditor: Auditor::new(chrono::Utc::now()),
            verified_seq: 0,
        }
    }

    /// Checks every event appended since the last call, and that they end at the head.
    async fn catch_up(&mut self, ledger: &Ledger, round: usize) {
        let auditor = &mut self.auditor;
        auditor.set_verifier_clock(Utc::now());
        let walked = ledger
            .store
            .for_each_event(ledger.ledger_id, self.verified_seq + 1, |event| {
                auditor.push(&event).map_err(VerifyError::Invalid)
            })
            .await;
        if let Err(error) = walked {
            panic!("round {round}: the ledger no longer verifies: {error}");
        }
        self.verified_seq = self.auditor.events();
        let head = ledger.store.head(ledger.ledger_id).await.unwrap().unwrap();
        assert_eq!(
            (self.verified_seq, self.auditor.head_hash()),
            head,
            "round {round}: the verified events end at the head"
        );
    }
}

/// Case 7 of issue 19. 2 of 4: alice proposes roll R and policy motion M, bob signs both; then
/// carol signs R and dave signs M at the same time, from two clients. Either R commits before M
/// is adopted (and stays committed), or M's adoption comes first and R, bound to the replaced
/// policy, is refused and shown expired. Never a `proposal.expired` after R's commit.
async fn a_roll_and_a_motion_signed_at_once_never_wedge_the_ledger(db: &TestDb) {
    let desk = Desk::new(&["alice", "bob", "carol", "dave"]);
    let (first, second) = two_clients(db, &desk, 2).await;
    let mut verifier = Verifier::new();
    let mut roll_commits = 0;
    for round in 0..RACE_ROUNDS {
        for _ in 0..OTHER_PENDING_ROLLS {
            propose_roll(&first, desk.key("bob")).await;
        }
        let roll = propose_roll(&first, desk.key("alice")).await;
        let motion = propose_policy(&first, desk.key("alice"), 3_600 + 60 * round as u64).await;
        first.sign(roll, desk.key("bob"), Utc::now()).await.unwrap();
        first
            .sign(motion, desk.key("bob"), Utc::now())
            .await
            .unwrap();
        // Two clients at once: their reads and appends interleave at every await.
        let (carol, dave): (Result<SignOutcome, ServiceError>, _) = tokio::join!(
            first.sign(roll, desk.key("carol"), Utc::now()),
            second.sign(motion, desk.key("dave"), Utc::now()),
        );

        verifier.catch_up(&first, round).await;
        let dave = dave.unwrap_or_else(|e| panic!("round {round}: dave's sign failed: {e}"));
        assert!(dave.committed, "round {round}: M had its second signature");
        assert_eq!(status(&second, motion).await, Status::Committed);
        let roll_status = status(&second, roll).await;
        match carol {
            Ok(outcome) if outcome.committed => {
                roll_commits += 1;
                assert_eq!(
                    roll_status,
                    Status::Committed,
                    "round {round}: carol was told committed"
                );
            }
            Ok(outcome) => panic!("round {round}: carol's signature did not commit: {outcome:?}"),
            Err(error) => {
                assert_eq!(
                    roll_status,
                    Status::Expired,
                    "round {round}: carol was refused ({error}), so R must not have committed"
                );
            }
        }
    }
    assert!(
        0 < roll_commits && roll_commits < RACE_ROUNDS,
        "both orders happened: R committed first in {roll_commits} of {RACE_ROUNDS} rounds"
    );
    verifier.auditor.finish().expect("nothing is left due");
    let summary = rollbook::audit::verify_live(&first.store, first.ledger_id, |_| {})
        .await
        .expect("the whole ledger verifies from genesis");
    // Every roll of the rounds but the committed Rs is bound to a replaced policy: expired.
    assert_eq!(summary.proposals.get("pending"), None, "{summary:?}");
    assert_eq!(
        summary.proposals["committed"],
        (RACE_ROUNDS + roll_commits) as u64,
        "every M and the Rs carol was told committed"
    );
    eprintln!(
        "{}: R committed first in {roll_commits} of {RACE_ROUNDS} rounds",
        db.backend
    );
}

/// A client keeps the governance it folded while the `ledger` stream is unchanged (each command
/// asks for it several times): once another client adopts a policy, its next ask folds the new
/// stream, and a roll it then proposes is bound to the adopted policy.
async fn a_client_that_read_the_governance_sees_another_clients_adoption(db: &TestDb) {
    let desk = Desk::new(&["alice", "bob", "carol"]);
    let (first, second) = two_clients(db, &desk, 2).await;
    let before = first.governance().await.unwrap();
    assert_eq!(before.policy_version, 1);
    let motion = propose_policy(&second, desk.key("alice"), 7_200).await;
    for signer in ["bob", "carol"] {
        second
            .sign(motion, desk.key(signer), Utc::now())
            .await
            .unwrap();
    }
    assert_eq!(status(&second, motion).await, Status::Committed);
    let after = first.governance().await.unwrap();
    assert_eq!(
        after.policy_version, 2,
        "the first client sees the adoption"
    );
    assert_eq!(after.policy.approval.proposal_ttl_seconds, 7_200);
    let roll = propose_roll(&first, desk.key("alice")).await;
    let state = first.proposal(roll).await.unwrap();
    assert_eq!(state.recorded.terms.policy_version, 2);
}

/// A proposal stream a client's pin verified is trusted only while it is exactly that: once a
/// stored co-signature is forged (its signature replaced and its row re-sealed, as an insider
/// with the database recomputes hashes), the next decision verifies the stream again and
/// refuses to sign on it.
async fn a_stream_remembered_as_verified_is_verified_again_once_it_changes(db: &TestDb) {
    let desk = Desk::new(&["alice", "bob", "carol", "dave"]);
    let (first, _second) = two_clients(db, &desk, 3).await;
    let roll = propose_roll(&first, desk.key("alice")).await;
    first.sign(roll, desk.key("bob"), Utc::now()).await.unwrap();
    let stream = first.stream(roll).await.unwrap();
    first.remember_verified_stream(&stream);
    let mut forged = stream.last().unwrap().clone();
    let payload = String::from_utf8(forged.payload.clone()).unwrap();
    let at = payload.find("\"signature\":\"").unwrap() + "\"signature\":\"".len();
    let flipped = if &payload[at..at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    forged.payload = format!("{}{flipped}{}", &payload[..at], &payload[at + 1..]).into_bytes();
    forged.hash = forged.computed_hash();
    db.tamper(&format!(
        "UPDATE events SET payload = {}, hash = {} WHERE seq = {}",
        common::sql_bytes(db, &forged.payload),
        common::sql_bytes(db, &forged.hash),
        forged.seq
    ))
    .await
    .unwrap();
    let refused = first.sign(roll, desk.key("carol"), Utc::now()).await;
    match refused {
        Err(ServiceError::Corrupt(reason)) => assert!(reason.contains("signature"), "{reason}"),
        other => panic!("signed on a forged stream: {other:?}"),
    }
}

/// Withdraws its rolls one after another until `done`, proposing a few more whenever fewer
/// than two are left, and returns those still pending when it stops. Counts the withdrawals
/// that succeed (after a policy adoption the old rolls count as expired: refused).
async fn churn_until(
    client: &Ledger,
    proposer: &SecretKey,
    mut rolls: std::collections::VecDeque<Uuid>,
    done: &AtomicBool,
    withdrawn: &AtomicUsize,
) -> Vec<Uuid> {
    while !done.load(Ordering::SeqCst) {
        if rolls.len() < 2 {
            for _ in 0..4 {
                // Refused when the adoption lands first (the governance changed): fine.
                let now = Utc::now();
                if let Ok((state, _)) = client.propose_roll(roll_body(now), proposer, now).await {
                    rolls.push_back(state.id);
                }
            }
        }
        let Some(oldest) = rolls.pop_front() else {
            continue;
        };
        if client.withdraw(oldest, proposer, Utc::now()).await.is_ok() {
            withdrawn.fetch_add(1, Ordering::SeqCst);
        }
    }
    rolls.into()
}

/// Issue 19, case 9: a signer who proposes rolls and withdraws them in a loop, from two
/// clients, cannot starve a governance commit signed beside them: it expects only the ledger
/// stream and its own, never the versions of the proposals they withdraw. The rolls left
/// pending and bound to the replaced policy count as expired.
async fn a_propose_and_withdraw_loop_cannot_starve_a_governance_commit(db: &TestDb) {
    let desk = Desk::new(&["alice", "bob", "carol"]);
    let (first, second) = two_clients(db, &desk, 2).await;
    let third = Ledger::open(Store::open(&db.url).await.unwrap())
        .await
        .unwrap();
    let motion = propose_policy(&first, desk.key("alice"), 3_600).await;
    first
        .sign(motion, desk.key("bob"), Utc::now())
        .await
        .unwrap();
    let bob = desk.key("bob");
    let (mut even, mut odd) = (Default::default(), std::collections::VecDeque::new());
    for index in 0..CHURN_PENDING_ROLLS {
        let roll = propose_roll(&second, bob).await;
        if index % 2 == 0 { &mut even } else { &mut odd }.push_back(roll);
    }
    let done = AtomicBool::new(false);
    let withdrawn = AtomicUsize::new(0);
    let sign = async {
        // Once the loops are under way, so every attempt of the commit runs beside them.
        while withdrawn.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        let outcome = first.sign(motion, desk.key("carol"), Utc::now()).await;
        done.store(true, Ordering::SeqCst);
        outcome
    };
    let (outcome, left_second, left_third) = tokio::join!(
        sign,
        churn_until(&second, bob, even, &done, &withdrawn),
        churn_until(&third, bob, odd, &done, &withdrawn),
    );
    let withdrawn = withdrawn.load(Ordering::SeqCst);
    let outcome = outcome.unwrap_or_else(|e| panic!("{withdrawn} withdrawals starved it: {e}"));
    assert!(outcome.committed);
    assert_eq!(status(&first, motion).await, Status::Committed);
    // Rolls left bound to the replaced policy count as expired; any proposed after it, pending.
    let mut still_pending = 0;
    for roll in left_second.into_iter().chain(left_third) {
        let bound_to_old = first
            .proposal(roll)
            .await
            .unwrap()
            .recorded
            .terms
            .policy_version
            == 1;
        let expected = if bound_to_old {
            Status::Expired
        } else {
            still_pending += 1;
            Status::Pending
        };
        assert_eq!(status(&first, roll).await, expected);
    }
    let summary = rollbook::audit::verify_live(&first.store, first.ledger_id, |_| {})
        .await
        .expect("the ledger verifies");
    assert_eq!(
        summary.proposals.get("pending").copied().unwrap_or(0),
        still_pending,
        "{summary:?}"
    );
}

both_backends!(
    a_client_that_read_the_governance_sees_another_clients_adoption,
    a_stream_remembered_as_verified_is_verified_again_once_it_changes,
    a_roll_and_a_motion_signed_at_once_never_wedge_the_ledger,
    a_propose_and_withdraw_loop_cannot_starve_a_governance_commit,
);
