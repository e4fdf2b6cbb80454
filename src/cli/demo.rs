//! `rollbook demo`: the whole story on a fresh ledger, with the demo keys of `keys-example/`.

use std::path::{Path, PathBuf};

use chrono::{Duration, TimeZone, Utc};
use clap::Args;

use super::proposals::service_error;
use super::views::summary;
use super::{CliError, CliResult, EXIT_CHECK_FAILED, EXIT_OK};
use crate::crypto::keys::{PublicKey, SecretKey};
use crate::domain::approval::Status;
use crate::domain::envelope::format_timestamp;
use crate::domain::events::{Fill, SignerEntry, SignerSet};
use crate::domain::execution::ExecutionRequest;
use crate::domain::governance::ActiveSet;
use crate::service::{self, Ledger};
use crate::sizing::{Policy, Proposal};
use crate::store::Store;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory of the demo keys, signers and proposal (default: keys-example; the copies
    /// built into the binary are used when it does not exist).
    #[arg(long, default_value = "keys-example")]
    pub keys: PathBuf,
}

/// The demo material, built in so the demo also runs outside the source tree.
const EMBEDDED: [(&str, &str); 8] = [
    ("alice.key", include_str!("../../keys-example/alice.key")),
    ("bob.key", include_str!("../../keys-example/bob.key")),
    ("carol.key", include_str!("../../keys-example/carol.key")),
    (
        "alice.key.pub",
        include_str!("../../keys-example/alice.key.pub"),
    ),
    (
        "bob.key.pub",
        include_str!("../../keys-example/bob.key.pub"),
    ),
    (
        "carol.key.pub",
        include_str!("../../keys-example/carol.key.pub"),
    ),
    (
        "policy.toml",
        include_str!("../../keys-example/policy.toml"),
    ),
    (
        "proposal.toml",
        include_str!("../../keys-example/proposal.toml"),
    ),
];

fn material(dir: &Path, name: &str) -> Result<String, CliError> {
    if dir.is_dir() {
        return std::fs::read_to_string(dir.join(name)).map_err(|error| {
            CliError::bad_input(format!("cannot read {}: {error}", dir.join(name).display()))
        });
    }
    Ok(EMBEDDED
        .iter()
        .find(|(file, _)| *file == name)
        .expect("embedded demo file")
        .1
        .to_string())
}

fn demo_key(dir: &Path, name: &str) -> Result<SecretKey, CliError> {
    SecretKey::parse(&material(dir, &format!("{name}.key"))?)
        .map_err(|e| CliError::bad_input(format!("demo key {name}: {e}")))
}

fn step(text: &str) {
    println!("\n== {text}");
}

pub async fn run(db: &str, args: &DemoArgs) -> CliResult {
    let dir = args.keys.as_path();
    let store = Store::open(db).await?;
    if !store.ledger_ids().await?.is_empty() {
        return Err(CliError::refused(format!(
            "{} already holds a ledger; the demo needs a fresh database (try --db sqlite://$(mktemp -d)/demo.db)",
            crate::store::redact_url(db)
        )));
    }
    println!(
        "rollbook demo on {} ({})",
        crate::store::redact_url(db),
        store.backend_name()
    );
    println!(
        "keys: {} (DEMO ONLY: published keys, never for real use)",
        if dir.is_dir() {
            dir.display().to_string()
        } else {
            "built-in copies of keys-example/".into()
        }
    );

    let (alice, bob, carol) = (
        demo_key(dir, "alice")?,
        demo_key(dir, "bob")?,
        demo_key(dir, "carol")?,
    );
    let roles = [
        ("alice", "risk officer"),
        ("bob", "trader"),
        ("carol", "portfolio manager"),
    ];
    let mut signers = Vec::new();
    for (name, role) in roles {
        let public = PublicKey::parse(&material(dir, &format!("{name}.key.pub"))?)
            .map_err(|e| CliError::bad_input(format!("demo key {name}.key.pub: {e}")))?;
        signers.push(SignerEntry {
            name: name.into(),
            role: Some(role.into()),
            public_key: crate::crypto::to_hex(&public.as_bytes()),
            key_id: public.key_id().to_string(),
            valid_after: None,
            valid_before: None,
        });
    }
    let set = ActiveSet::validate(&SignerSet {
        version: 1,
        threshold: 2,
        signers,
    })
    .map_err(|refusal| CliError::bad_input(refusal.to_string()))?;
    let policy = Policy::from_toml_str(&material(dir, "policy.toml")?)
        .map_err(|e| CliError::bad_input(format!("policy.toml: {e}")))?;

    step("init: a 2-of-3 ledger (alice, bob, carol), the default policy, created by alice");
    let (ledger_id, governance) = service::init(&store, &set, &policy, &alice, Utc::now())
        .await
        .map_err(service_error)?;
    println!("ledger {ledger_id}, policy {}", governance.policy_hash);
    let ledger = Ledger::new(store, ledger_id);

    // The worked example dates from May 2026; move it so its snapshot is twenty minutes old
    // (fresh for ten more) and its execution window, 15 to 45 minutes after the snapshot, is
    // open now: the story ends with the roll's fills.
    let mut proposal = Proposal::from_toml_str(&material(dir, "proposal.toml")?)
        .map_err(|e| CliError::bad_input(format!("proposal.toml: {e}")))?;
    let as_of = Utc
        .with_ymd_and_hms(2026, 5, 7, 14, 30, 0)
        .single()
        .expect("valid date");
    proposal.shift_times(Utc::now() - Duration::minutes(20) - as_of);

    step("bob proposes the example as written: 12 contracts");
    let (failed, report) = ledger
        .propose_roll(proposal.to_toml_string(), &bob, Utc::now())
        .await
        .map_err(service_error)?;
    println!(
        "proposal {} [{}]: verdict {}, failed checks: {}",
        failed.id,
        failed.status,
        report.verdict.as_str(),
        report.failed_check_ids().join(", ")
    );
    println!("the attempt is recorded and can never be signed; the largest size that passes: {} contracts", report.contracts_max);

    step(&format!("bob proposes {} contracts", report.contracts_max));
    proposal.set_contracts_requested(report.contracts_max);
    let (pending, report) = ledger
        .propose_roll(proposal.to_toml_string(), &bob, Utc::now())
        .await
        .map_err(service_error)?;
    println!(
        "proposal {} [{}]: verdict {}",
        pending.id,
        pending.status,
        report.verdict.as_str()
    );
    println!("  {}", summary(&pending));

    step("mallory, who is not a signer, tries to co-sign");
    let mallory =
        SecretKey::generate().map_err(|e| CliError::new(super::EXIT_IO, e.to_string()))?;
    match ledger.sign(pending.id, &mallory, Utc::now()).await {
        Err(error) => println!("refused: {error}"),
        Ok(_) => {
            return Err(CliError::new(
                EXIT_CHECK_FAILED,
                "an outsider's signature was accepted",
            ))
        }
    }

    step("alice co-signs");
    let first = ledger
        .sign(pending.id, &alice, Utc::now())
        .await
        .map_err(service_error)?;
    println!(
        "{} of {} counted; may still sign: {}",
        first.tally.counted.len(),
        first.tally.threshold,
        first.tally.missing.join(", ")
    );

    step("carol co-signs");
    let second = ledger
        .sign(pending.id, &carol, Utc::now())
        .await
        .map_err(service_error)?;
    let state = ledger.proposal(pending.id).await.map_err(service_error)?;
    println!(
        "{} of {} counted: {}",
        second.tally.counted.len(),
        second.tally.threshold,
        state.status
    );
    if state.status != Status::Committed {
        return Err(CliError::new(
            EXIT_CHECK_FAILED,
            "the demo proposal did not commit",
        ));
    }

    step("checkpoint after the commit: alice signs the head, a witness on a loopback port cosigns it");
    let witness = super::demo_witness::start(ledger_id, &set).await?;
    println!(
        "witness listening on {} (its state in the private directory {}, removed at the end)",
        witness.url,
        witness.state_dir().display()
    );
    witness.checkpoint(&ledger, &alice, "alice").await?;

    step("alice records the fills from the broker: the roll as executed");
    let fill = |contracts: u32, price_usd: f64, minutes_ago: i64, broker_ref: &str| Fill {
        contracts,
        price_usd,
        at: format_timestamp(Utc::now() - Duration::minutes(minutes_ago)),
        broker_ref: broker_ref.to_string(),
    };
    let half = state.recorded.terms.contracts_requested.unwrap_or(1) / 2;
    let rest = state.recorded.terms.contracts_requested.unwrap_or(1) - half;
    let request = ExecutionRequest {
        fills: vec![fill(half, 2.95, 3, "DEMO-1"), fill(rest, 2.97, 1, "DEMO-2")],
        corrects: Vec::new(),
    };
    let (executed, _) = ledger
        .execute(pending.id, &request, &alice, Utc::now())
        .await
        .map_err(service_error)?;
    println!(
        "{} contracts filled of {} approved, inside the window and the quote bounds: {}",
        executed.filled_contracts,
        half + rest,
        executed.status
    );

    step("checkpoint at the end of the day: the witness cosigns the longer tree after checking a consistency proof from the one it cosigned");
    witness.checkpoint(&ledger, &carol, "carol").await?;

    step("verify the live ledger: chain, every signature, governance, a fresh evaluation of each report");
    let live = crate::audit::verify_live(&ledger.store, ledger_id, |_| {})
        .await
        .map_err(|error| {
            CliError::new(EXIT_CHECK_FAILED, format!("verification failed: {error}"))
        })?;
    println!("{} events valid, head {}", live.events, live.head_hash);

    step("export the audit trail and verify it offline, as a reviewer would");
    let path = std::env::temp_dir().join(format!("rollbook-demo-{ledger_id}.jsonl"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).map_err(|e| {
        CliError::new(
            super::EXIT_IO,
            format!("cannot write {}: {e}", path.display()),
        )
    })?);
    crate::audit::export_jsonl(
        &ledger.store,
        ledger_id,
        1,
        &mut file,
        &crate::domain::envelope::format_timestamp(Utc::now()),
    )
    .await?;
    drop(file);
    let reader = std::io::BufReader::new(std::fs::File::open(&path).map_err(|e| {
        CliError::new(
            super::EXIT_IO,
            format!("cannot read {}: {e}", path.display()),
        )
    })?);
    let offline = crate::audit::verify_export(reader, |_| {}).map_err(|error| {
        CliError::new(
            EXIT_CHECK_FAILED,
            format!("offline verification failed: {error}"),
        )
    })?;
    let statuses: Vec<String> = offline
        .summary
        .proposals
        .iter()
        .map(|(status, n)| format!("{status} {n}"))
        .collect();
    println!(
        "{}: VALID offline: {} events, proposals {}",
        path.display(),
        offline.summary.events,
        statuses.join(", ")
    );
    println!("merkle root {}", offline.summary.merkle_root);
    let policy = path.with_extension("policy");
    std::fs::write(&policy, witness.policy_text()).map_err(|e| {
        CliError::new(
            super::EXIT_IO,
            format!("cannot write {}: {e}", policy.display()),
        )
    })?;
    let complete = witness.check(&offline)?;
    println!(
        "complete under the policy {}: its last event is covered by the checkpoint of size {} signed by {}, cosigned by {} (at most 24 h old)",
        policy.display(),
        complete.tree_size,
        complete.signers.join(", "),
        complete
            .cosigned_by
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "\nnext: `rollbook verify {} --witnesses {}`, `rollbook --db {} list`, `rollbook --db {} show {}`",
        path.display(),
        policy.display(),
        crate::store::redact_url(db),
        crate::store::redact_url(db),
        pending.id
    );
    ledger.store.close().await;
    Ok(EXIT_OK)
}
