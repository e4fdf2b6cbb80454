//! The roll as executed (`roll.executed`, checks A13 and A14), live on both backends: fills in
//! and out of the approved bounds, corrections, refusals that leave the ledger unchanged, a
//! tampered execution caught by `verify` with every hash recomputed, and the CLI.

mod common;

use std::path::PathBuf;
use std::process::Output;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::story::{body, t0, two_of_three_with_a_roll};
use common::TestDb;
use rollbook::audit::auditor::Auditor;
use rollbook::audit::verify_live;
use rollbook::crypto::keys::SecretKey;
use rollbook::domain::approval::{ProposalState, Status};
use rollbook::domain::chain::AtHead;
use rollbook::domain::envelope::NewEvent;
use rollbook::domain::envelope::{format_timestamp, StoredEvent};
use rollbook::domain::events::{Fill, RollExecuted};
use rollbook::domain::execution::{
    decide_execute, execute_message, ExecutableRoll, ExecutionRequest,
};
use rollbook::domain::governance::seal_signature;
use rollbook::domain::governance::Refusal;
use rollbook::service::{Ledger, ServiceError};
use rollbook::sizing::Proposal;
use rollbook::store::Landing;
use rollbook::store::Store;

const EXAMPLE: &str = include_str!("vectors/example-proposal.toml");

/// The example's approved terms: 9 contracts, premium 2.95 USD, window 14:45 to 15:15 on
/// 2026-05-07, `quote_deviation_max` 0.25 (the default policy).
const APPROVED: u32 = 9;
const PREMIUM_USD: f64 = 2.95;

/// Inside the approved window.
fn in_window(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 7, 14, 45, 0).unwrap() + Duration::minutes(minutes)
}

fn fill(contracts: u32, price_usd: f64, at: DateTime<Utc>, broker_ref: &str) -> Fill {
    Fill {
        contracts,
        price_usd,
        at: format_timestamp(at),
        broker_ref: broker_ref.into(),
    }
}

fn fills(fills: Vec<Fill>) -> ExecutionRequest {
    ExecutionRequest {
        fills,
        corrects: Vec::new(),
    }
}

struct Desk {
    ledger: Ledger,
    /// alice, bob, carol: 2 of 3.
    keys: [SecretKey; 3],
}

/// A 2-of-3 ledger with a roll of `APPROVED` contracts bob proposed at t0 + 1 s, pending.
async fn pending_roll(db: &TestDb) -> (Desk, ProposalState) {
    let (ledger, keys, roll) = two_of_three_with_a_roll(db, APPROVED).await;
    (Desk { ledger, keys }, roll)
}

/// The same roll, committed by alice's and carol's co-signatures.
async fn committed_roll(db: &TestDb) -> (Desk, ProposalState) {
    let (desk, roll) = pending_roll(db).await;
    let at = t0() + Duration::seconds(2);
    let mut outcome = desk.ledger.sign(roll.id, &desk.keys[0], at).await.unwrap();
    if !outcome.committed {
        outcome = desk.ledger.sign(roll.id, &desk.keys[2], at).await.unwrap();
    }
    assert!(outcome.committed);
    let state = desk.ledger.proposal(roll.id).await.unwrap();
    assert_eq!(state.status, Status::Committed);
    (desk, state)
}

/// A committed roll's record is the same whether the auditor kept its body terms from the
/// recording's check (a walk from genesis, which does not parse the body again at the commit)
/// or read them from the body (the roll folded from its stream, as a resumed client does).
async fn the_body_terms_kept_from_the_recording_are_the_bodys(db: &TestDb) {
    let (desk, roll) = committed_roll(db).await;
    let page = desk
        .ledger
        .store
        .read_page(desk.ledger.ledger_id, 0, 1_000)
        .await
        .unwrap();
    let mut auditor = Auditor::new(now());
    for event in &page {
        auditor.push(event).unwrap();
    }
    let walked = auditor.take_touched_rolls();
    let folded =
        ExecutableRoll::from_stream(&desk.ledger.stream(roll.id).await.unwrap(), 0.25).unwrap();
    assert_eq!(folded.approved.contracts, APPROVED);
    assert_eq!(folded.approved.premium_usd, PREMIUM_USD);
    assert_eq!(
        walked,
        [(roll.id.to_string(), serde_json::to_vec(&folded).unwrap())]
    );
}

/// When an execution is recorded: forty minutes after t0, five minutes after the window ended
/// (fills are recorded after they happen).
fn now() -> DateTime<Utc> {
    t0() + Duration::minutes(40)
}

async fn summary_of(desk: &Desk) -> rollbook::audit::auditor::AuditSummary {
    verify_live(&desk.ledger.store, desk.ledger.ledger_id, |_| {})
        .await
        .expect("the ledger verifies")
}

async fn head_seq(desk: &Desk) -> u64 {
    desk.ledger.head().await.unwrap().seq
}

both_backends!(
    the_body_terms_kept_from_the_recording_are_the_bodys,
    in_bounds_the_roll_becomes_executed,
    partial_fills_keep_the_roll_committed_until_the_size_is_filled,
    too_many_contracts_are_recorded_as_a_breach,
    a_fill_outside_the_window_is_a_breach,
    a_price_outside_the_deviation_is_a_breach,
    only_a_committed_roll_is_executed,
    only_a_signer_in_force_records_an_execution,
    a_correction_references_earlier_fills_and_replaces_them,
    a_tampered_execution_is_invalid_with_every_hash_recomputed,
    an_execution_after_the_recording_window_is_invalid,
    concurrent_executions_are_both_recorded_and_counted_together,
    the_cli_records_fills_with_exit_codes_and_json,
);

async fn in_bounds_the_roll_becomes_executed(db: &TestDb) {
    let (desk, roll) = committed_roll(db).await;
    let (executed, stored) = desk
        .ledger
        .execute(
            roll.id,
            &fills(vec![
                fill(4, PREMIUM_USD, in_window(1), "IB-1"),
                fill(5, 3.05, in_window(2), "IB-2"),
            ]),
            &desk.keys[2],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(executed.status, "executed");
    assert_eq!(executed.filled_contracts, 9);
    assert!(executed.breaches.is_empty(), "{:?}", executed.breaches);
    assert_eq!(stored.event_type, "roll.executed");
    assert_eq!(
        stored.actor.as_deref(),
        Some(executed.signature.key_id.as_str())
    );
    let state = desk.ledger.proposal(roll.id).await.unwrap();
    assert_eq!(state.status, Status::Executed);
    assert_eq!(state.filled_contracts, 9);
    let summary = summary_of(&desk).await;
    assert_eq!((summary.executions, summary.execution_breaches), (1, 0));
    assert_eq!(summary.proposals.get("executed"), Some(&1));
    assert_eq!(summary.proposals.get("committed"), None);
    // The projection follows, and a rebuild from the events alone agrees.
    let store = &desk.ledger.store;
    let before = store.proposals(desk.ledger.ledger_id, None).await.unwrap();
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].status, "executed");
    store
        .rebuild_projections(desk.ledger.ledger_id)
        .await
        .unwrap();
    assert_eq!(
        store.proposals(desk.ledger.ledger_id, None).await.unwrap(),
        before
    );
    // An executed roll was committed: it still draws on its closed layer.
    let (_, report) = desk
        .ledger
        .propose_roll(body(3), &desk.keys[1], now() + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(report.drawn.contracts, u64::from(APPROVED));
    assert_eq!(report.drawn.proposal_ids, vec![roll.id.to_string()]);
    summary_of(&desk).await;
}

async fn partial_fills_keep_the_roll_committed_until_the_size_is_filled(db: &TestDb) {
    let (desk, roll) = committed_roll(db).await;
    let (first, _) = desk
        .ledger
        .execute(
            roll.id,
            &fills(vec![fill(4, 2.95, in_window(1), "IB-1")]),
            &desk.keys[0],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(
        (first.status.as_str(), first.filled_contracts),
        ("committed", 4)
    );
    let state = desk.ledger.proposal(roll.id).await.unwrap();
    assert_eq!(state.status, Status::Committed);
    assert_eq!(state.filled_contracts, 4);
    let (second, _) = desk
        .ledger
        .execute(
            roll.id,
            &fills(vec![fill(5, 2.90, in_window(3), "IB-2")]),
            &desk.keys[1],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(
        (second.status.as_str(), second.filled_contracts),
        ("executed", 9)
    );
    assert_eq!(summary_of(&desk).await.executions, 2);
}

/// Records `request` and expects an execution breach naming `needle`; the breach is verified,
/// counted and kept.
async fn expect_breach(desk: &Desk, roll: &ProposalState, request: ExecutionRequest, needle: &str) {
    let before = head_seq(desk).await;
    let (executed, _) = desk
        .ledger
        .execute(roll.id, &request, &desk.keys[0], now())
        .await
        .expect("a breach is recorded, not refused");
    assert_eq!(executed.status, "execution_breach");
    assert!(
        executed.breaches.iter().any(|b| b.contains(needle)),
        "{:?} does not mention {needle:?}",
        executed.breaches
    );
    assert_eq!(head_seq(desk).await, before + 1);
    let state = desk.ledger.proposal(roll.id).await.unwrap();
    assert_eq!(state.status, Status::ExecutionBreach);
    assert_eq!(state.execution_breaches, 1);
    let summary = summary_of(desk).await;
    assert_eq!(summary.execution_breaches, 1);
    assert_eq!(summary.proposals.get("execution_breach"), Some(&1));
    // Later fills within bounds are recorded, and the breach stays named.
    let (later, _) = desk
        .ledger
        .execute(
            roll.id,
            &fills(vec![fill(1, 2.95, in_window(20), "IB-9")]),
            &desk.keys[1],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(later.status, "execution_breach");
    assert!(later.breaches.is_empty() || needle.contains("more than"));
    assert_eq!(
        summary_of(desk).await.proposals.get("execution_breach"),
        Some(&1)
    );
}

async fn too_many_contracts_are_recorded_as_a_breach(db: &TestDb) {
    let (desk, roll) = committed_roll(db).await;
    let request = fills(vec![
        fill(6, 2.95, in_window(1), "IB-1"),
        fill(4, 2.95, in_window(2), "IB-2"),
    ]);
    expect_breach(
        &desk,
        &roll,
        request,
        "10 contracts filled in all, more than the approved 9",
    )
    .await;
}

async fn a_fill_outside_the_window_is_a_breach(db: &TestDb) {
    let (desk, roll) = committed_roll(db).await;
    // The window ends at 15:15 (included); a fill at 15:15:01 lies outside.
    let late = Utc.with_ymd_and_hms(2026, 5, 7, 15, 15, 1).unwrap();
    let request = fills(vec![fill(3, 2.95, late, "IB-1")]);
    expect_breach(
        &desk,
        &roll,
        request,
        "fills[0] at 2026-05-07T15:15:01.000000Z lies outside the approved window",
    )
    .await;
}

async fn a_price_outside_the_deviation_is_a_breach(db: &TestDb) {
    let (desk, roll) = committed_roll(db).await;
    // 0.25 of 2.95 is 0.7375: 3.68 is within, 3.70 is not.
    let within = fills(vec![fill(1, 3.68, in_window(1), "IB-1")]);
    let (ok, _) = desk
        .ledger
        .execute(roll.id, &within, &desk.keys[0], now())
        .await
        .unwrap();
    assert!(ok.breaches.is_empty(), "{:?}", ok.breaches);
    let request = fills(vec![fill(1, 3.70, in_window(2), "IB-2")]);
    let before = head_seq(&desk).await;
    let (executed, _) = desk
        .ledger
        .execute(roll.id, &request, &desk.keys[0], now())
        .await
        .unwrap();
    assert_eq!(head_seq(&desk).await, before + 1);
    assert_eq!(executed.status, "execution_breach");
    assert!(
        executed.breaches[0].contains("fills[0] price 3.7 USD deviates"),
        "{:?}",
        executed.breaches
    );
    assert_eq!(summary_of(&desk).await.execution_breaches, 1);
}

async fn only_a_committed_roll_is_executed(db: &TestDb) {
    let (desk, roll) = pending_roll(db).await;
    let before = head_seq(&desk).await;
    let request = fills(vec![fill(1, 2.95, in_window(1), "IB-1")]);
    match desk
        .ledger
        .execute(roll.id, &request, &desk.keys[0], now())
        .await
    {
        Err(ServiceError::Refused(Refusal::NotExecutable { what, .. })) => {
            assert_eq!(what, "pending")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Withdrawn: closed, never committed.
    desk.ledger
        .withdraw(roll.id, &desk.keys[1], now())
        .await
        .unwrap();
    let after_withdrawal = head_seq(&desk).await;
    assert_eq!(after_withdrawal, before + 1);
    assert!(matches!(
        desk.ledger
            .execute(roll.id, &request, &desk.keys[0], now())
            .await,
        Err(ServiceError::Refused(Refusal::NotExecutable { .. }))
    ));
    assert_eq!(head_seq(&desk).await, after_withdrawal, "nothing recorded");
    summary_of(&desk).await;
}

async fn only_a_signer_in_force_records_an_execution(db: &TestDb) {
    let (desk, roll) = committed_roll(db).await;
    let before = head_seq(&desk).await;
    let outsider = SecretKey::generate().unwrap();
    let request = fills(vec![fill(1, 2.95, in_window(1), "IB-1")]);
    match desk
        .ledger
        .execute(roll.id, &request, &outsider, now())
        .await
    {
        Err(ServiceError::Refused(Refusal::NotASigner { action, .. })) => {
            assert_eq!(action, "record an execution")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A fill later than its recording (plus the 60 s skew) has not happened yet.
    let early = in_window(10);
    let future = fills(vec![fill(1, 2.95, early + Duration::seconds(61), "IB-1")]);
    match desk
        .ledger
        .execute(roll.id, &future, &desk.keys[0], early)
        .await
    {
        Err(ServiceError::Refused(Refusal::FillInvalid { field, rule })) => {
            assert_eq!(field, "fills[0].at");
            assert!(
                rule.contains("a fill is recorded after it happened"),
                "{rule}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // After the recording window (30 days after execute_before) nobody records.
    let late = Utc.with_ymd_and_hms(2026, 6, 6, 15, 15, 1).unwrap();
    assert!(matches!(
        desk.ledger
            .execute(roll.id, &request, &desk.keys[0], late)
            .await,
        Err(ServiceError::Refused(
            Refusal::ExecutionRecordingClosed { .. }
        ))
    ));
    assert_eq!(head_seq(&desk).await, before, "nothing recorded");
}

async fn a_correction_references_earlier_fills_and_replaces_them(db: &TestDb) {
    let (desk, roll) = committed_roll(db).await;
    // A mistyped price: recorded as a breach.
    let (typo, typo_event) = desk
        .ledger
        .execute(
            roll.id,
            &fills(vec![fill(4, 29.5, in_window(1), "IB-1")]),
            &desk.keys[0],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(typo.status, "execution_breach");
    let (other, other_event) = desk
        .ledger
        .execute(
            roll.id,
            &fills(vec![fill(2, 2.95, in_window(2), "IB-2")]),
            &desk.keys[0],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(other.filled_contracts, 6);
    // The correction names the typo's event id: its 4 contracts are replaced by these 4.
    let correction = ExecutionRequest {
        fills: vec![fill(4, 2.95, in_window(1), "IB-1")],
        corrects: vec![typo_event.event_id.to_string()],
    };
    let (corrected, _) = desk
        .ledger
        .execute(roll.id, &correction, &desk.keys[1], now())
        .await
        .unwrap();
    assert_eq!(
        corrected.filled_contracts, 6,
        "the typo's contracts no longer count"
    );
    assert!(corrected.breaches.is_empty());
    assert_eq!(corrected.corrects, vec![typo_event.event_id.to_string()]);
    assert_eq!(
        corrected.status, "execution_breach",
        "the breach stays named"
    );
    // A correction that cancels fills records none.
    let cancel = ExecutionRequest {
        fills: Vec::new(),
        corrects: vec![other_event.event_id.to_string()],
    };
    let (cancelled, _) = desk
        .ledger
        .execute(roll.id, &cancel, &desk.keys[1], now())
        .await
        .unwrap();
    assert_eq!(cancelled.filled_contracts, 4);
    let before = head_seq(&desk).await;
    // The typo was corrected already; an unknown id is no earlier execution of this roll.
    for id in [typo_event.event_id, uuid::Uuid::now_v7()] {
        let again = ExecutionRequest {
            fills: vec![fill(1, 2.95, in_window(1), "IB-1")],
            corrects: vec![id.to_string()],
        };
        assert!(matches!(
            desk.ledger
                .execute(roll.id, &again, &desk.keys[1], now())
                .await,
            Err(ServiceError::Refused(Refusal::CorrectionTarget { .. }))
        ));
    }
    assert_eq!(head_seq(&desk).await, before);
    let summary = summary_of(&desk).await;
    assert_eq!((summary.executions, summary.execution_breaches), (4, 1));
}

async fn a_tampered_execution_is_invalid_with_every_hash_recomputed(db: &TestDb) {
    let (desk, roll) = committed_roll(db).await;
    let (_, stored) = desk
        .ledger
        .execute(
            roll.id,
            &fills(vec![fill(12, 2.95, in_window(1), "IB-1")]),
            &desk.keys[0],
            now(),
        )
        .await
        .unwrap();
    // Claim "within bounds": status and breaches rewritten, the signed fills kept.
    rewrite_with_chain(db, &desk, &stored, |executed| {
        executed.status = "executed".into();
        executed.breaches.clear();
    })
    .await;
    expect_invalid(db, &desk, stored.seq, "(A14)").await;

    // Fewer contracts than signed: the signature no longer covers the fills.
    let fresh = fresh_like(db).await;
    let (desk, roll) = committed_roll(&fresh).await;
    let (_, stored) = desk
        .ledger
        .execute(
            roll.id,
            &fills(vec![fill(12, 2.95, in_window(1), "IB-1")]),
            &desk.keys[0],
            now(),
        )
        .await
        .unwrap();
    rewrite_with_chain(&fresh, &desk, &stored, |executed| {
        executed.fills[0].contracts = 9;
        executed.filled_contracts = 9;
        executed.status = "executed".into();
        executed.breaches.clear();
    })
    .await;
    expect_invalid(&fresh, &desk, stored.seq, "execution digest").await;
}

/// Two desks record fills at once from two connections: each execution is decided on the
/// totals the other left (the roll's stream version orders them), so the second is the breach.
async fn concurrent_executions_are_both_recorded_and_counted_together(db: &TestDb) {
    let (desk, roll) = committed_roll(db).await;
    let other = Ledger::open(Store::open(&db.url).await.unwrap().trusting_caller_clock())
        .await
        .unwrap();
    let five = fills(vec![fill(5, 2.95, in_window(1), "IB-1")]);
    let six = fills(vec![fill(6, 2.95, in_window(2), "IB-2")]);
    let (first, second) = tokio::join!(
        desk.ledger.execute(roll.id, &five, &desk.keys[0], now()),
        other.execute(roll.id, &six, &desk.keys[1], now()),
    );
    let (first, second) = (first.unwrap().0, second.unwrap().0);
    let mut totals = [first.filled_contracts, second.filled_contracts];
    totals.sort();
    assert!(totals == [5, 11] || totals == [6, 11], "{totals:?}");
    let state = desk.ledger.proposal(roll.id).await.unwrap();
    assert_eq!(
        (state.status, state.filled_contracts),
        (Status::ExecutionBreach, 11)
    );
    assert_eq!(summary_of(&desk).await.execution_breaches, 1);
}

/// A signer who bypasses `execute` and appends a well-signed execution 31 days after the
/// window: the store takes it (it checks no rule), the verifier refuses it (A13).
async fn an_execution_after_the_recording_window_is_invalid(db: &TestDb) {
    let (desk, roll) = committed_roll(db).await;
    let events = desk.ledger.stream(roll.id).await.unwrap();
    let executable = ExecutableRoll::from_stream(&events, 0.25).unwrap();
    let governance = desk.ledger.governance().await.unwrap();
    let head = desk.ledger.head().await.unwrap();
    let request = fills(vec![fill(1, 2.95, in_window(1), "IB-1")]);
    let message = execute_message(&governance, &executable, &request.fills, &[], &head);
    let signature = seal_signature(&desk.keys[0], message);
    let event = decide_execute(
        &governance,
        &executable,
        request,
        signature.clone(),
        now(),
        &mut AtHead::new(head),
    )
    .expect("valid at the time it was signed");
    let late = Utc.with_ymd_and_hms(2026, 6, 7, 0, 0, 0).unwrap();
    let written = desk
        .ledger
        .store
        .append_before(
            desk.ledger.ledger_id,
            false,
            &[],
            vec![NewEvent {
                stream_id: roll.id.to_string(),
                event_type: event.event_type().into(),
                schema_version: 1,
                actor: Some(signature.key_id.clone()),
                payload: event.to_payload(),
            }],
            late,
            Landing {
                deadline: None,
                after_head: Some(head),
            },
        )
        .await
        .unwrap();
    expect_invalid(
        db,
        &desk,
        written[0].seq,
        "executions are recorded until 30 days",
    )
    .await;
}

async fn expect_invalid(db: &TestDb, desk: &Desk, seq: u64, needle: &str) {
    let store = Store::open(&db.url).await.unwrap();
    match verify_live(&store, desk.ledger.ledger_id, |_| {}).await {
        Err(rollbook::audit::VerifyError::Invalid(failure)) => {
            assert_eq!(failure.seq, seq, "{failure}");
            assert!(failure.reason.contains(needle), "{failure}");
        }
        other => panic!("expected seq {seq} to fail with {needle:?}, got {other:?}"),
    }
}

/// A fresh database on the same backend as `db`.
async fn fresh_like(db: &TestDb) -> TestDb {
    if db.backend == "sqlite" {
        TestDb::sqlite()
    } else {
        TestDb::postgres().await.expect("PostgreSQL is configured")
    }
}

/// Rewrites the execution event's payload past rollbook and recomputes its hash, every later
/// hash and the head, as an administrator who knows the format would.
async fn rewrite_with_chain(
    db: &TestDb,
    desk: &Desk,
    target: &StoredEvent,
    edit: impl FnOnce(&mut RollExecuted),
) {
    let mut events = desk
        .ledger
        .store
        .read_page(desk.ledger.ledger_id, 0, 1_000)
        .await
        .unwrap();
    let index = (target.seq - 1) as usize;
    let mut payload: RollExecuted = serde_json::from_slice(&events[index].payload).unwrap();
    edit(&mut payload);
    events[index].payload = serde_json::to_vec(&payload).unwrap();
    for i in index..events.len() {
        if i > index {
            events[i].prev_hash = events[i - 1].hash;
        }
        events[i].hash = events[i].computed_hash();
    }
    let mut statements: Vec<String> = events[index..]
        .iter()
        .map(|event| {
            format!(
                "UPDATE events SET payload = {}, prev_hash = {}, hash = {} WHERE seq = {}",
                common::sql_bytes(db, &event.payload),
                common::sql_bytes(db, &event.prev_hash),
                common::sql_bytes(db, &event.hash),
                event.seq
            )
        })
        .collect();
    statements.push(format!(
        "UPDATE ledgers SET head_hash = {}",
        common::sql_bytes(db, &events.last().unwrap().hash)
    ));
    for statement in statements {
        db.tamper(&statement).await.unwrap();
    }
}

// ---- the CLI ----

struct Cli<'a> {
    db: &'a TestDb,
    dir: PathBuf,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Cli<'_> {
    fn run(&self, args: &[&str]) -> Output {
        self.db
            .rollbook(&self.db.state_dir())
            .args(args)
            .output()
            .expect("run rollbook")
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn ok_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn events(&self) -> u64 {
        self.ok_json(&["verify", "--json"])["events"]
            .as_u64()
            .unwrap()
    }

    fn write(&self, name: &str, content: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, content).unwrap();
        path
    }
}

fn fills_toml(rows: &[(u32, f64, DateTime<Utc>, &str)]) -> String {
    rows.iter()
        .map(|(contracts, price, at, reference)| {
            format!(
                "[[fills]]\ncontracts = {contracts}\nprice_usd = {price}\nat = \"{}\"\nbroker_ref = \"{reference}\"\n",
                at.to_rfc3339()
            )
        })
        .collect()
}

async fn the_cli_records_fills_with_exit_codes_and_json(db: &TestDb) {
    let cli = Cli {
        db,
        dir: db.dir.path().to_path_buf(),
    };
    for name in ["alice", "bob", "carol", "dave"] {
        let out = common::rollbook_command()
            .args([
                "keygen",
                "--no-passphrase",
                "--out",
                &cli.path(&format!("{name}.key")),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    cli.write(
        "signers.toml",
        "threshold = 2\n[[signers]]\nname = \"alice\"\npublic_key_file = \"alice.key.pub\"\n\
         [[signers]]\nname = \"bob\"\npublic_key_file = \"bob.key.pub\"\n\
         [[signers]]\nname = \"carol\"\npublic_key_file = \"carol.key.pub\"\n",
    );
    let out = cli.run(&[
        "init",
        "--signers",
        &cli.path("signers.toml"),
        "--key",
        &cli.path("alice.key"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A roll dated now: its window opens in 5 minutes and closes in 35.
    let mut proposal = Proposal::from_toml_str(EXAMPLE).unwrap();
    let as_of = Utc.with_ymd_and_hms(2026, 5, 7, 14, 30, 0).unwrap();
    proposal.shift_times(Utc::now() - Duration::minutes(10) - as_of);
    proposal.set_contracts_requested(APPROVED);
    // The window opened two minutes ago, so fills a minute old lie inside it.
    proposal.roll.execute_after = Utc::now() - Duration::minutes(2);
    let window_opens = proposal.roll.execute_after;
    let roll_file = cli.write("roll.toml", &proposal.to_toml_string());
    let id = cli.ok_json(&[
        "propose",
        &roll_file,
        "--key",
        &cli.path("bob.key"),
        "--json",
    ])["proposal_id"]
        .as_str()
        .unwrap()
        .to_string();
    let key = |name: &str| cli.path(&format!("{name}.key"));
    let good = cli.write(
        "fills.toml",
        &fills_toml(&[(4, 2.95, window_opens + Duration::seconds(30), "IB-1")]),
    );

    // Not committed yet: refused (3), nothing recorded.
    let before = cli.events();
    let out = cli.run(&["execute", &id, "--fills", &good, "--key", &key("alice")]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("only a committed roll is executed"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(cli.events(), before);

    let signed = cli.ok_json(&["sign", &id, "--key", &key("alice"), "--json"]);
    if signed["status"] != "committed" {
        cli.ok_json(&["sign", &id, "--key", &key("carol"), "--json"]);
    }

    // Malformed fills files: bad input (2), naming the file and the field; nothing recorded.
    let before = cli.events();
    for (name, content, needle) in [
        (
            "empty.toml",
            String::new(),
            "fills must hold at least one fill",
        ),
        (
            "zero.toml",
            fills_toml(&[(0, 2.95, window_opens, "IB-1")]),
            "fills[0].contracts",
        ),
        (
            "neg.toml",
            fills_toml(&[(1, -2.95, window_opens, "IB-1")]),
            "fills[0].price_usd",
        ),
        (
            "at.toml",
            "[[fills]]\ncontracts = 1\nprice_usd = 2.95\nat = \"soon\"\nbroker_ref = \"IB-1\"\n"
                .to_string(),
            "fills[0].at",
        ),
        (
            "ref.toml",
            fills_toml(&[(1, 2.95, window_opens, "")]),
            "fills[0].broker_ref",
        ),
        (
            "unknown.toml",
            format!(
                "{}venue = \"X\"\n",
                fills_toml(&[(1, 2.95, window_opens, "IB-1")])
            ),
            "fills[0].venue",
        ),
        ("syntax.toml", "[[fills]\n".to_string(), "is not valid TOML"),
    ] {
        let file = cli.write(name, &content);
        let out = cli.run(&["execute", &id, "--fills", &file, "--key", &key("alice")]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(name) && stderr.contains(needle),
            "{name}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // A key outside the set: refused (3).
    let out = cli.run(&["execute", &id, "--fills", &good, "--key", &key("dave")]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(cli.events(), before);

    // Within bounds: exit 0, JSON.
    let first = cli.ok_json(&[
        "execute",
        &id,
        "--fills",
        &good,
        "--key",
        &key("alice"),
        "--json",
    ]);
    assert_eq!(first["status"], "committed");
    assert_eq!(first["filled_contracts"], 4);
    assert_eq!(first["approved_contracts"], APPROVED);
    assert_eq!(first["breaches"], serde_json::json!([]));
    let shown = cli.ok_json(&["show", &id, "--json"]);
    assert_eq!(shown["execution"], "partially executed");
    assert_eq!(shown["execution_events"][0]["event_id"], first["event_id"]);

    // Out of bounds: recorded (one more event), exit 1, named everywhere.
    let over = cli.write(
        "over.toml",
        &fills_toml(&[(6, 2.95, window_opens + Duration::seconds(60), "IB-2")]),
    );
    let out = cli.run(&[
        "execute",
        &id,
        "--fills",
        &over,
        "--key",
        &key("bob"),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let breach: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(breach["status"], "execution_breach");
    assert!(breach["breaches"][0]
        .as_str()
        .unwrap()
        .contains("more than the approved 9"));
    assert_eq!(cli.events(), before + 2);
    let listed = cli.ok_json(&["list", "--status", "execution_breach", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let out = cli.run(&["list"]);
    assert!(
        text(&out.stdout).contains("execution breach"),
        "{}",
        text(&out.stdout)
    );
    let out = cli.run(&["show", &id]);
    for line in [
        "execution breach: 10 contracts filled in all",
        "  execution: execution breach, 10 of 9 contracts filled in 2 execution(s); 1 recorded an execution breach",
    ] {
        assert!(
            text(&out.stdout).contains(line),
            "{line:?}: {}",
            text(&out.stdout)
        );
    }
    let verified = cli.ok_json(&["verify", "--json"]);
    assert_eq!(verified["execution_breaches"], 1);
    assert_eq!(verified["executions"], 2);
    let out = cli.run(&["verify"]);
    assert!(
        text(&out.stdout).contains("EXECUTION BREACH"),
        "{}",
        text(&out.stdout)
    );
    let csv = cli.path("proposals.csv");
    let out = cli.run(&["export", "--format", "csv", "--out", &csv]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut reader = csv::Reader::from_path(csv).unwrap();
    let headers = reader.headers().unwrap().clone();
    let row = reader.records().next().unwrap().unwrap();
    let cell = |name: &str| &row[headers.iter().position(|h| h == name).unwrap()];
    assert_eq!(cell("status"), "execution_breach");
    assert_eq!(cell("execution"), "execution breach");
    assert_eq!(cell("filled_contracts"), "10");
    assert_eq!(cell("execution_breaches"), "1");
    // An export verifies offline with the executions in it.
    let export = cli.path("audit.jsonl");
    let out = cli.run(&["export", "--out", &export]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let offline = cli.ok_json(&["verify", &export, "--json"]);
    assert_eq!(offline["execution_breaches"], 1);
}
