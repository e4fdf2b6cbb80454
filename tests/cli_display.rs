//! What you see is what you sign, and what a reviewer can pin, through the real binary on
//! SQLite and PostgreSQL: a motion shows each key id it changes (`show`, `inbox`, `sign`,
//! `request`, `sign --offline`, and their JSON); free text with control characters is refused
//! at input and shown escaped when a ledger holds it; `verify --genesis` tells one ledger from
//! another with the same id.

mod common;

use std::ops::Deref;
use std::path::Path;

use chrono::{Duration, Utc};
use common::desk::{roll_dated_now, text, CliDesk};
use common::TestDb;
use rollbook::crypto::canonical::{genesis_message, Purpose};
use rollbook::crypto::keys::SecretKey;
use rollbook::crypto::to_hex;
use rollbook::domain::approval::message_for;
use rollbook::domain::envelope::NewEvent;
use rollbook::domain::events::{
    Event, LedgerCreated, ProposalRejected, SignerEntry, SignerSet, LEDGER_FORMAT, SCHEMA_VERSION,
};
use rollbook::domain::governance::seal_signature;
use rollbook::service::Ledger;
use rollbook::sizing::{Policy, Proposal};
use rollbook::store::{ExpectedVersion, Store};

/// A desk of signers with keys from `rollbook keygen`, on one database.
struct Desk<'a>(CliDesk<'a>);

impl<'a> Deref for Desk<'a> {
    type Target = CliDesk<'a>;
    fn deref(&self) -> &CliDesk<'a> {
        &self.0
    }
}

impl<'a> Desk<'a> {
    /// alice, bob, carol and dave (2 of 4, alice creates); mallory1, mallory2 and erin have keys
    /// but are in no set.
    fn new(db: &'a TestDb) -> Desk<'a> {
        let desk = Desk(CliDesk::new(db));
        for name in [
            "alice", "bob", "carol", "dave", "mallory1", "mallory2", "erin",
        ] {
            desk.keygen(name);
        }
        desk.signers(
            "signers.toml",
            2,
            &[
                ("alice", Some("risk"), "alice"),
                ("bob", None, "bob"),
                ("carol", None, "carol"),
                ("dave", Some("ops"), "dave"),
            ],
        );
        desk.ok(&[
            "init",
            "--signers",
            &desk.path("signers.toml"),
            "--key",
            &desk.path("alice.key"),
        ]);
        desk
    }

    /// A signers file: (name, role, whose key).
    fn signers(&self, file: &str, threshold: u32, signers: &[(&str, Option<&str>, &str)]) {
        let mut toml = format!("threshold = {threshold}\n");
        for (name, role, key) in signers {
            toml.push_str(&format!("[[signers]]\nname = \"{name}\"\n"));
            if let Some(role) = role {
                toml.push_str(&format!("role = \"{role}\"\n"));
            }
            toml.push_str(&format!("public_key_file = \"{key}.key.pub\"\n"));
        }
        std::fs::write(self.path(file), toml).unwrap();
    }

    fn secret(&self, name: &str) -> SecretKey {
        rollbook::crypto::keyfile::read_secret_key(Path::new(&self.key(name)))
            .unwrap()
            .0
    }

    fn key_id(&self, name: &str) -> String {
        self.secret(name).public().key_id().to_string()
    }

    /// The worked example dated now, requesting `contracts`, with `note`.
    fn roll_body(&self, contracts: u32, note: &str) -> String {
        let mut proposal = roll_dated_now(contracts);
        proposal.roll.note = note.into();
        proposal.to_toml_string()
    }

    async fn ledger(&self) -> Ledger {
        Ledger::open(Store::open_existing(&self.db.url).await.unwrap())
            .await
            .unwrap()
    }
}

/// The bytes a terminal acts on: none may reach one from a ledger string.
fn assert_no_terminal_controls(what: &str, output: &str) {
    assert!(
        !output.contains(['\r', '\u{1b}']),
        "{what} lets control characters reach the terminal: {output:?}"
    );
}

both_backends!(
    a_key_swapping_signer_set_motion_shows_every_rotated_key,
    a_signer_set_motion_names_added_removed_role_and_threshold_changes,
    a_policy_motion_shows_each_changed_value_online_and_offline,
    a_note_with_control_characters_is_refused_and_an_older_one_is_shown_escaped,
    a_veto_reason_with_control_characters_is_refused_at_input_and_by_every_reader,
    names_and_roles_with_control_characters_are_refused_naming_the_field,
    verify_checks_the_genesis_hash_of_a_file_and_of_the_live_ledger,
    a_verification_failure_quoting_the_file_is_shown_escaped,
    a_fabricated_ledger_with_the_same_id_is_caught_by_genesis_and_its_key_ids,
);

/// Case 8: bob proposes v2 with the same names and threshold, alice's and carol's keys swapped
/// for keys he holds. Every view a signer sees names both rotations with old and new key ids.
async fn a_key_swapping_signer_set_motion_shows_every_rotated_key(db: &TestDb) {
    let desk = Desk::new(db);
    desk.signers(
        "swap.toml",
        2,
        &[
            ("alice", Some("risk"), "mallory1"),
            ("bob", None, "bob"),
            ("carol", None, "mallory2"),
            ("dave", Some("ops"), "dave"),
        ],
    );
    let motion = desk.json(&[
        "governance",
        "propose-signers",
        "--signers",
        &desk.path("swap.toml"),
        "--key",
        &desk.key("bob"),
    ]);
    let id = motion["proposal_id"].as_str().unwrap().to_string();
    let rotated = |name: &str, old: &str, new: &str| {
        format!(
            "! KEY ROTATED for {name}: {} -> {}",
            desk.key_id(old),
            desk.key_id(new)
        )
    };
    let expected = [
        rotated("alice", "alice", "mallory1"),
        rotated("carol", "carol", "mallory2"),
    ];
    let show = desk.ok(&["show", &id]);
    let inbox = desk.ok(&["inbox", "--key", &desk.key("dave")]);
    desk.ok(&["request", &id, "--out", &desk.path("req.json")]);
    let request = std::fs::read_to_string(desk.path("req.json")).unwrap();
    // dave signs the request file `request` offline (stdout, stderr), expecting exit `code`.
    let sign_offline_exits = |request: &str, out: &str, json: &[&str], code: i32| {
        let mut args = vec![
            "sign".to_string(),
            id.clone(),
            "--key".into(),
            desk.key("dave"),
            "--offline".into(),
            "--request".into(),
            desk.path(request),
            "--out".into(),
            desk.path(out),
        ];
        args.extend(json.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        desk.exits(&args, code)
    };
    let sign_offline =
        |request: &str, out: &str, json: &[&str]| sign_offline_exits(request, out, json, 0);
    let (offline_json, offline) = sign_offline("req.json", "dave.sig.json", &["--json"]);
    let offline_json: serde_json::Value = serde_json::from_str(&offline_json).unwrap();
    // Whoever writes the request can state another set in force, so that the changes shown are
    // made up (here: none, the next set itself). The subject digest binds the set's hash: a
    // request whose stated set does not hash to its `signer_set_hash` is refused, and one whose
    // hash (and digest) were recomputed to match yields a signature the ledger refuses.
    let mut forged: serde_json::Value = serde_json::from_str(&request).unwrap();
    let mut claimed: rollbook::domain::events::SignerSet =
        serde_json::from_str(forged["body"].as_str().unwrap()).unwrap();
    claimed.version = forged["signer_set_version"].as_u64().unwrap();
    let claimed = serde_json::to_string(&claimed).unwrap();
    forged["in_force"] = claimed.clone().into();
    std::fs::write(desk.path("forged.json"), forged.to_string()).unwrap();
    let (_, stderr) = sign_offline_exits("forged.json", "forged.sig.json", &[], 2);
    assert!(
        stderr.contains("not the request's signer_set_hash"),
        "{stderr}"
    );
    let claimed_hash =
        rollbook::crypto::to_hex(&rollbook::crypto::canonical::signer_set_hash(&claimed));
    forged["signer_set_hash"] = claimed_hash.clone().into();
    std::fs::write(desk.path("forged.json"), forged.to_string()).unwrap();
    let (_, stderr) = sign_offline_exits("forged.json", "forged.sig.json", &[], 2);
    assert!(stderr.contains("subject digest does not match"), "{stderr}");
    forged["subject_digest"] = digest_of_request(&forged).into();
    std::fs::write(desk.path("forged.json"), forged.to_string()).unwrap();
    let (_, forged_offline) = sign_offline("forged.json", "forged.sig.json", &[]);
    assert!(
        forged_offline.contains(&format!(
            "in force (hash {claimed_hash}; the signature binds it)"
        )),
        "{forged_offline}"
    );
    desk.refused(
        &["attach", &desk.path("forged.sig.json")],
        3,
        "a signature over a different proposal content (subject digest)",
    );
    let (_, sign) = desk.exits(&["sign", &id, "--key", &desk.key("dave")], 0);
    for (view, output) in [
        ("show", &show),
        ("inbox", &inbox),
        ("sign", &sign),
        ("sign --offline", &offline),
        ("request", &request),
    ] {
        for line in &expected {
            assert!(
                output.contains(line.as_str()),
                "{view} lacks {line:?}:\n{output}"
            );
        }
        assert!(
            output.contains(&desk.key_id("mallory1")),
            "{view} shows the next set's key ids:\n{output}"
        );
    }
    // The same as data.
    let changes = &desk.json(&["show", &id])["changes"];
    assert_eq!(
        changes,
        &serde_json::json!([
            {"change": "key_rotated", "name": "alice", "old_key_id": desk.key_id("alice"), "new_key_id": desk.key_id("mallory1")},
            {"change": "key_rotated", "name": "carol", "old_key_id": desk.key_id("carol"), "new_key_id": desk.key_id("mallory2")},
        ])
    );
    let next = &desk.json(&["show", &id])["next_signers"];
    assert_eq!(next[0]["key_id"], desk.key_id("mallory1"));
    let inbox = desk.json(&["inbox", "--key", &desk.key("carol")]);
    assert_eq!(
        &inbox[0]["changes"], changes,
        "inbox --json carries them too"
    );
    assert_eq!(&motion["changes"], changes, "propose-signers --json too");
    assert_eq!(
        &offline_json["changes"], changes,
        "sign --offline --json too"
    );
    let signed = desk.json(&["sign", &id, "--key", &desk.key("carol")]);
    assert_eq!(signed["status"], "pending");
    assert_eq!(&signed["changes"], changes, "sign --json too");
}

/// The subject digest of a sign request as its JSON states it (what a forger recomputes).
fn digest_of_request(request: &serde_json::Value) -> String {
    let text = |key: &str| request[key].as_str().unwrap().to_string();
    let uuid = |key: &str| uuid::Uuid::parse_str(request[key].as_str().unwrap()).unwrap();
    let (ledger_id, proposal_id) = (uuid("ledger_id"), uuid("proposal_id"));
    let digest =
        rollbook::crypto::canonical::subject_digest(&rollbook::crypto::canonical::SubjectInput {
            ledger_id: &ledger_id,
            proposal_id: &proposal_id,
            kind: &text("kind"),
            body: &text("body"),
            report_json: request["report_json"].as_str(),
            policy_hash: &text("policy_hash"),
            policy_version: request["policy_version"].as_u64().unwrap(),
            signer_set_version: request["signer_set_version"].as_u64().unwrap(),
            signer_set_hash: &text("signer_set_hash"),
            created_at: &text("created_at"),
            expires_at: &text("expires_at"),
        });
    rollbook::crypto::to_hex(&digest)
}

async fn a_signer_set_motion_names_added_removed_role_and_threshold_changes(db: &TestDb) {
    let desk = Desk::new(db);
    desk.signers(
        "next.toml",
        3,
        &[
            ("alice", Some("risk"), "alice"),
            ("bob", Some("trading"), "bob"),
            ("dave", Some("ops"), "dave"),
            ("erin", Some("audit"), "erin"),
        ],
    );
    let id = desk.json(&[
        "governance",
        "propose-signers",
        "--signers",
        &desk.path("next.toml"),
        "--key",
        &desk.key("alice"),
    ])["proposal_id"]
        .as_str()
        .unwrap()
        .to_string();
    let show = desk.ok(&["show", &id]);
    for line in [
        "~ threshold: 2 -> 3".to_string(),
        "~ role of bob: no role -> trading".to_string(),
        format!("- removed carol (key {})", desk.key_id("carol")),
        format!("+ added erin (audit) with key {}", desk.key_id("erin")),
        "next signer set v2: 3 of 4".to_string(),
    ] {
        assert!(show.contains(&line), "show lacks {line:?}:\n{show}");
    }
    let kinds: Vec<String> = desk.json(&["show", &id])["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["change"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        ["threshold_changed", "role_changed", "removed", "added"]
    );
}

async fn a_policy_motion_shows_each_changed_value_online_and_offline(db: &TestDb) {
    let desk = Desk::new(db);
    std::fs::write(
        desk.path("next-policy.toml"),
        "[approval]\nproposer_counts = true\n[growth]\nlayer_growth_max = 2.0\n",
    )
    .unwrap();
    let id = desk.json(&[
        "governance",
        "propose-policy",
        "--policy",
        &desk.path("next-policy.toml"),
        "--key",
        &desk.key("bob"),
    ])["proposal_id"]
        .as_str()
        .unwrap()
        .to_string();
    let expected = [
        "~ growth.layer_growth_max: 1.25 -> 2.0",
        "~ approval.proposer_counts: false -> true",
    ];
    desk.ok(&["request", &id, "--out", &desk.path("req.json")]);
    let offline_args = [
        "sign",
        &id,
        "--key",
        &desk.key("carol"),
        "--offline",
        "--request",
        &desk.path("req.json"),
        "--out",
        &desk.path("carol.sig.json"),
        // Signed twice below: the second is refused for its request, not its existing file.
        "--force",
    ];
    let (_, offline) = desk.exits(&offline_args, 0);
    let show = desk.ok(&["show", &id]);
    let inbox = desk.ok(&["inbox", "--key", &desk.key("alice")]);
    let (_, sign) = desk.exits(&["sign", &id, "--key", &desk.key("alice")], 0);
    for (view, output) in [
        ("show", &show),
        ("inbox", &inbox),
        ("sign", &sign),
        ("sign --offline", &offline),
    ] {
        for line in expected {
            assert!(output.contains(line), "{view} lacks {line:?}:\n{output}");
        }
        assert_eq!(
            output.matches("~ ").count(),
            2,
            "{view} shows only what changes:\n{output}"
        );
    }
    let changes = &desk.json(&["show", &id])["changes"];
    assert!(
        changes.as_array().unwrap().contains(&serde_json::json!(
            {"change": "policy_value_changed", "key": "approval.proposer_counts", "old": false, "new": true}
        )),
        "{changes}"
    );
    // A request whose policy in force was altered (to hide a change) is refused offline: its
    // hash must be the digested policy_hash.
    let mut request: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(desk.path("req.json")).unwrap()).unwrap();
    let mut forged = Policy::default();
    forged.approval.proposer_counts = true;
    request["in_force"] = forged.canonical_json().into();
    std::fs::write(desk.path("req.json"), request.to_string()).unwrap();
    let (_, stderr) = desk.exits(&offline_args, 2);
    assert!(stderr.contains("in_force is not the policy"), "{stderr}");
    // One without it (an attacker's review: with made-up `changes` beside it, the signer was
    // shown the policy's hash and nothing else, and signed) is refused too.
    request.as_object_mut().unwrap().remove("in_force");
    request["changes"] = serde_json::json!(["~ timing.snapshot_max_age_minutes: 30 -> 31"]);
    std::fs::write(desk.path("req.json"), request.to_string()).unwrap();
    let (_, stderr) = desk.exits(&offline_args, 2);
    assert!(
        stderr.contains("carries no in_force, so what it changes cannot be shown"),
        "{stderr}"
    );
}

/// Case 8: a note with a carriage return and an erase-line sequence made a 9-contract roll
/// read as 2 contracts. New notes are refused at input; one a ledger already holds (written by
/// an older version, here through the library, which still reads them) is shown escaped.
async fn a_note_with_control_characters_is_refused_and_an_older_one_is_shown_escaped(db: &TestDb) {
    let desk = Desk::new(db);
    let note = "\r\u{1b}[2Kroll 2 x VIX 18 call (outlay 530.00 USD)";
    let body = desk.roll_body(9, note);
    std::fs::write(desk.path("evil.toml"), &body).unwrap();
    let (_, stderr) = desk.exits(
        &[
            "propose",
            &desk.path("evil.toml"),
            "--key",
            &desk.key("bob"),
        ],
        2,
    );
    assert!(stderr.contains("roll.note"), "{stderr}");
    assert!(stderr.contains("control character"), "{stderr}");
    let (_, stderr) = desk.exits(&["evaluate", &desk.path("evil.toml")], 2);
    assert!(stderr.contains("roll.note"), "{stderr}");
    let mut blackout = Proposal::from_toml_str(&desk.roll_body(9, "")).unwrap();
    let index = blackout.calendar.blackouts.len();
    blackout
        .calendar
        .blackouts
        .push(rollbook::sizing::Blackout {
            name: "FOMC\u{1b}[8m".into(),
            start: Utc::now() + Duration::days(30),
            end: Utc::now() + Duration::days(31),
        });
    std::fs::write(desk.path("blackout.toml"), blackout.to_toml_string()).unwrap();
    let (_, stderr) = desk.exits(
        &[
            "propose",
            &desk.path("blackout.toml"),
            "--key",
            &desk.key("bob"),
        ],
        2,
    );
    assert!(
        stderr.contains(&format!("calendar.blackouts[{index}].name")),
        "{stderr}"
    );

    let ledger = desk.ledger().await;
    let (state, _) = ledger
        .propose_roll(body, &desk.secret("bob"), Utc::now())
        .await
        .expect("the library still records what older versions wrote");
    ledger.store.close().await;
    let id = state.id.to_string();
    let escaped = "\\r\\u{1b}[2Kroll 2 x VIX";
    desk.ok(&["request", &id, "--out", &desk.path("req.json")]);
    let views = [
        ("show", desk.ok(&["show", &id])),
        ("list", desk.ok(&["list"])),
        ("inbox", desk.ok(&["inbox", "--key", &desk.key("alice")])),
        (
            "sign --offline",
            desk.exits(
                &[
                    "sign",
                    &id,
                    "--key",
                    &desk.key("alice"),
                    "--offline",
                    "--request",
                    &desk.path("req.json"),
                    "--out",
                    &desk.path("alice.sig.json"),
                ],
                0,
            )
            .1,
        ),
        (
            "sign",
            desk.exits(&["sign", &id, "--key", &desk.key("carol")], 0).1,
        ),
    ];
    for (view, output) in &views {
        assert_no_terminal_controls(view, output);
        // `list` shows the size in its own column (9), the note beside it.
        let size = if *view == "list" { "  9  " } else { "9 x VIX" };
        assert!(output.contains(size), "{view}:\n{output}");
        assert!(
            output.contains(escaped),
            "{view} shows the note escaped:\n{output}"
        );
    }
    assert!(desk.json(&["show", &id])["summary"]
        .as_str()
        .unwrap()
        .contains(note));
}

/// A veto reason with a line break, written by a client that skipped the rule (signed and
/// appended through the library): `show` prints it escaped.
async fn a_veto_reason_with_control_characters_is_refused_at_input_and_by_every_reader(
    db: &TestDb,
) {
    let desk = Desk::new(db);
    let ledger = desk.ledger().await;
    let (state, _) = ledger
        .propose_roll(
            desk.roll_body(9, "quarterly roll"),
            &desk.secret("bob"),
            Utc::now(),
        )
        .await
        .unwrap();
    // The CLI refuses such a reason at input.
    std::fs::write(desk.path("r.toml"), desk.roll_body(9, "")).unwrap();
    let id = desk.json(&["propose", &desk.path("r.toml"), "--key", &desk.key("bob")])
        ["proposal_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, stderr) = desk.exits(
        &[
            "reject",
            &id,
            "--key",
            &desk.key("carol"),
            "--reason",
            "a\rb",
        ],
        3,
    );
    assert!(stderr.contains("veto reason"), "{stderr}");
    assert_no_terminal_controls("reject", &stderr);
    // Another client writes one anyway (check A4 forbids it): every reader refuses the ledger,
    // exit 1, and the refusal reaches the terminal escaped.
    let reason = "stale\n  signatures: 2 of 2 needed (alice; carol)\u{1b}[1A";
    let carol = desk.secret("carol");
    let event = Event::ProposalRejected(ProposalRejected {
        proposal_id: state.id.to_string(),
        reason: reason.into(),
        signature: seal_signature(
            &carol,
            message_for(
                ledger.ledger_id,
                &state,
                Purpose::Veto,
                &ledger.head().await.unwrap(),
                Some(reason),
            ),
        ),
    });
    ledger
        .store
        .append(
            ledger.ledger_id,
            false,
            &[],
            vec![NewEvent {
                stream_id: event.stream_id().to_string(),
                event_type: event.event_type().to_string(),
                schema_version: SCHEMA_VERSION,
                actor: Some(carol.public().key_id().to_string()),
                payload: event.to_payload(),
            }],
            Utc::now(),
        )
        .await
        .unwrap();
    ledger.store.close().await;
    let (_, stderr) = desk.exits(&["show", &state.id.to_string()], 1);
    assert!(stderr.contains("(A4)"), "{stderr}");
    assert_no_terminal_controls("show", &stderr);
}

async fn names_and_roles_with_control_characters_are_refused_naming_the_field(db: &TestDb) {
    let desk = Desk::new(db);
    for (file, signers, needle) in [
        ("n.toml", "[[signers]]\nname = \"al\\rice\"\npublic_key_file = \"alice.key.pub\"\n", "signer name \"al\\rice\""),
        ("r.toml", "[[signers]]\nname = \"alice\"\nrole = \"risk\\u001b[2K\"\npublic_key_file = \"alice.key.pub\"\n", "signer alice: role"),
    ] {
        std::fs::write(desk.path(file), format!("threshold = 1\n{signers}")).unwrap();
        let (_, stderr) = desk.exits(
            &["governance", "propose-signers", "--signers", &desk.path(file), "--key", &desk.key("alice")],
            2,
        );
        assert!(stderr.contains(needle), "{stderr}");
        assert_no_terminal_controls("the error", &stderr);
    }
}

async fn verify_checks_the_genesis_hash_of_a_file_and_of_the_live_ledger(db: &TestDb) {
    let desk = Desk::new(db);
    let governance = desk.json(&["governance", "show"]);
    let genesis = governance["genesis_hash"].as_str().unwrap().to_string();
    assert_eq!(genesis.len(), 64);
    assert_eq!(governance["signers"][0]["key_id"], desk.key_id("alice"));
    desk.ok(&["export", "--out", &desk.path("audit.jsonl")]);
    let audit = desk.path("audit.jsonl");
    let mut wrong = genesis.clone().into_bytes();
    wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).unwrap();
    for source in [vec![], vec![audit.as_str()]] {
        let with = |extra: &[&str]| -> Vec<String> {
            let mut args = vec!["verify".to_string()];
            args.extend(source.iter().map(|s| s.to_string()));
            args.extend(extra.iter().map(|s| s.to_string()));
            args
        };
        let run = |extra: &[&str], code: i32| {
            let args = with(extra);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            desk.exits(&args, code)
        };
        let (plain, _) = run(&[], 0);
        assert!(
            plain.contains(&format!("genesis hash  {genesis}")),
            "{plain}"
        );
        assert!(plain.contains(&desk.key_id("dave")), "{plain}");
        assert!(plain.contains("identity      NOT CHECKED"), "{plain}");
        let (json, _) = run(&["--json"], 0);
        let json: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(json["genesis_hash"], genesis.as_str());
        assert_eq!(json["identity_checked_by"], serde_json::json!([]));
        assert_eq!(json["signer_keys"][1]["key_id"], desk.key_id("bob"));

        let (right, _) = run(&["--genesis", &genesis, "--json"], 0);
        let right: serde_json::Value = serde_json::from_str(&right).unwrap();
        assert_eq!(right["identity_checked_by"], serde_json::json!(["genesis"]));
        let (right, _) = run(&["--genesis", &genesis], 0);
        assert!(!right.contains("identity      NOT CHECKED"), "{right}");

        let (stdout, stderr) = run(&["--genesis", &wrong], 1);
        for hash in [&genesis, &wrong] {
            assert!(
                stdout.contains(hash.as_str()) && stderr.contains(hash.as_str()),
                "{stdout}{stderr}"
            );
        }
        assert!(stdout.contains("INVALID"), "{stdout}");
        for malformed in ["xyz", &genesis[..63], &genesis.to_uppercase()] {
            let (_, stderr) = run(&["--genesis", malformed], 2);
            assert!(stderr.contains("not a genesis hash"), "{stderr}");
        }
    }
}

/// A verification failure quotes the file (here an unknown key holding an erase-line sequence
/// and a carriage return that would overwrite INVALID with VALID): escaped on both streams.
async fn a_verification_failure_quoting_the_file_is_shown_escaped(db: &TestDb) {
    let desk = Desk::new(db);
    desk.ok(&["export", "--out", &desk.path("audit.jsonl")]);
    let export = std::fs::read_to_string(desk.path("audit.jsonl")).unwrap();
    let forged = export.replacen(
        r#"{"type":"event","#,
        r#"{"type":"event","\u001b[2K\rledger VALID":1,"#,
        1,
    );
    assert_ne!(forged, export);
    std::fs::write(desk.path("forged.jsonl"), forged).unwrap();
    let (stdout, stderr) = desk.exits(&["verify", &desk.path("forged.jsonl")], 1);
    assert_no_terminal_controls("verify's stdout", &stdout);
    assert_no_terminal_controls("verify's stderr", &stderr);
    assert!(stdout.contains("INVALID at seq 1"), "{stdout}");
    assert!(stdout.contains("\\u{1b}[2K\\rledger VALID"), "{stdout}");
}

/// Case 4: a ledger fabricated with the real ledger's id and a genesis naming the same people
/// with other keys verifies on its own; `--genesis` refuses it, and its key ids differ.
async fn a_fabricated_ledger_with_the_same_id_is_caught_by_genesis_and_its_key_ids(db: &TestDb) {
    // The real ledger, in a database of its own.
    let real_dir = tempfile::tempdir().unwrap();
    let real_url = format!("sqlite://{}/real.db", real_dir.path().display());
    let desk = Desk::new(db);
    let real = |args: &[&str]| {
        // Its pins in this test process's state dir: never the real home, never the desk's.
        let out = common::rollbook_command()
            .arg("--db")
            .arg(&real_url)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    desk.signers(
        "abc.toml",
        2,
        &[
            ("alice", None, "alice"),
            ("bob", None, "bob"),
            ("carol", None, "carol"),
        ],
    );
    let created = real(&[
        "init",
        "--signers",
        &desk.path("abc.toml"),
        "--key",
        &desk.key("alice"),
        "--json",
    ]);
    let real_genesis = created["genesis_hash"].as_str().unwrap().to_string();
    assert_eq!(created["signer_keys"][0]["key_id"], desk.key_id("alice"));
    let real_id: uuid::Uuid = created["ledger_id"].as_str().unwrap().parse().unwrap();

    // The fabrication, on the backend under test (a fresh schema beside the desk's own ledger
    // would be a second ledger, so it replaces the database: a new TestDb of the same backend).
    let forged_db = match db.backend {
        "sqlite" => TestDb::sqlite(),
        _ => TestDb::postgres().await.unwrap(),
    };
    let fake: Vec<(&str, SecretKey)> = ["alice", "bob", "carol"]
        .into_iter()
        .map(|name| (name, SecretKey::generate().unwrap()))
        .collect();
    let set = SignerSet {
        version: 1,
        threshold: 2,
        signers: fake
            .iter()
            .map(|(name, key)| SignerEntry {
                name: name.to_string(),
                role: None,
                public_key: to_hex(&key.public().as_bytes()),
                key_id: key.public().key_id().to_string(),
                valid_after: None,
                valid_before: None,
            })
            .collect(),
    };
    let set_json = serde_json::to_string(&set).unwrap();
    let policy = Policy::default();
    let genesis = Event::LedgerCreated(LedgerCreated {
        format: LEDGER_FORMAT.into(),
        signature: seal_signature(
            &fake[0].1,
            genesis_message(
                &real_id,
                &set_json,
                &policy.canonical_json(),
                &policy.hash_hex(),
            ),
        ),
        signer_set_json: set_json,
        policy_version: 1,
        policy_json: policy.canonical_json(),
        policy_hash: policy.hash_hex(),
    });
    let store = Store::open(&forged_db.url).await.unwrap();
    store
        .append(
            real_id,
            true,
            &[("ledger".to_string(), ExpectedVersion::NoStream)],
            vec![NewEvent {
                stream_id: genesis.stream_id().to_string(),
                event_type: genesis.event_type().to_string(),
                schema_version: SCHEMA_VERSION,
                actor: Some(fake[0].1.public().key_id().to_string()),
                payload: genesis.to_payload(),
            }],
            Utc::now(),
        )
        .await
        .unwrap();
    store.close().await;
    let forged = CliDesk::new(&forged_db);
    forged.ok(&["export", "--out", &forged.path("forged.jsonl")]);
    let file = forged.path("forged.jsonl");
    for source in [vec![], vec![file.as_str()]] {
        let mut args: Vec<&str> = vec!["verify"];
        args.extend(&source);
        // On its own it is internally consistent: VALID, but visibly not the real signers.
        let (valid, _) = forged.exits(&args, 0);
        assert!(
            valid.contains(&real_id.to_string()),
            "the same ledger id:\n{valid}"
        );
        assert!(valid.contains("(alice, bob, carol)"), "{valid}");
        assert!(valid.contains("identity      NOT CHECKED"), "{valid}");
        assert!(
            valid.contains(&fake[0].1.public().key_id().to_string()),
            "{valid}"
        );
        assert!(!valid.contains(&desk.key_id("alice")), "{valid}");
        args.extend(["--genesis", real_genesis.as_str()]);
        let (stdout, stderr) = forged.exits(&args, 1);
        assert!(stdout.contains(&real_genesis), "{stdout}");
        assert!(stderr.contains("another ledger"), "{stderr}");
    }
}
