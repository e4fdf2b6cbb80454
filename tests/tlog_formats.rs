//! The C2SP formats of `rollbook::tlog`: the specs' own examples, Go's sumdb/note vector, strict
//! parsing, verification rules (unknown keys ignored, a failing known key refuses the note),
//! checkpoints, cosignatures and policies.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use rollbook::crypto::merkle::Hash;
use rollbook::crypto::SecretKey;
use rollbook::tlog::checkpoint::{ledger_checkpoint, Checkpoint, CheckpointError};
use rollbook::tlog::cosignature::{self, cosign};
use rollbook::tlog::note::{
    key_id, parse_signature_lines, sign_ed25519, verified_signatures, verify_note, Note, NoteError,
    NoteSignature, VerifierKey, VerifierKind,
};
use rollbook::tlog::policy::Policy;

/// c2sp.org/signed-note, "Verifier keys", example.
const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

/// golang.org/x/mod/sumdb/note's documented example: a private key, its vkey, a text and the
/// signed note Go produces (Ed25519 is deterministic, so ours must be byte-identical).
const GO_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const GO_TEXT: &str =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_SIGNATURE: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

/// c2sp.org/tlog-checkpoint and tlog-cosignature, example.
const SPEC_CHECKPOINT: &str =
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
const SPEC_COSIGNATURE_LINE: &str = "\u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n";

fn go_secret_key() -> SecretKey {
    // PRIVATE+KEY+name+id+base64: the base64 may hold '+' itself.
    let encoded = GO_SKEY.splitn(5, '+').nth(4).unwrap();
    let bytes = STANDARD.decode(encoded).unwrap();
    assert_eq!(bytes[0], 0x01);
    let seed: [u8; 32] = bytes[1..].try_into().unwrap();
    let pem = ed25519_dalek::SigningKey::from_bytes(&seed)
        .to_pkcs8_pem(Default::default())
        .unwrap();
    SecretKey::parse(&pem).unwrap()
}

fn fresh_key() -> SecretKey {
    SecretKey::generate().unwrap()
}

#[test]
fn the_spec_example_note_verifies_under_its_vkey_and_formats_back_byte_exact() {
    let vkey = VerifierKey::parse(SPEC_VKEY).unwrap();
    assert_eq!(vkey.to_string(), SPEC_VKEY);
    assert_eq!(vkey.kind(), VerifierKind::Ed25519);
    let note = Note::parse(SPEC_NOTE.as_bytes()).unwrap();
    assert_eq!(note.text(), "This is an example message.\n");
    assert_eq!(note.to_text(), SPEC_NOTE);
    let verified = verify_note(&note, &[vkey]).unwrap();
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0].time_s, None);
}

#[test]
fn signing_go_s_example_gives_go_s_bytes_and_vkey() {
    let key = go_secret_key();
    let vkey = VerifierKey::new("PeterNeumann", VerifierKind::Ed25519, key.public()).unwrap();
    assert_eq!(vkey.to_string(), GO_VKEY);
    let mut note = Note::new(GO_TEXT).unwrap();
    note.push_signature(sign_ed25519(GO_TEXT, "PeterNeumann", &key).unwrap())
        .unwrap();
    assert_eq!(note.to_text(), format!("{GO_TEXT}\n{GO_SIGNATURE}"));
}

#[test]
fn the_quasimodo_note_with_empty_lines_in_its_text_splits_at_the_last_blank_line() {
    let text = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \u{e8} subito sera.\n";
    let signed = format!("{text}\n\u{2014} quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n");
    let note = Note::parse(signed.as_bytes()).unwrap();
    assert_eq!(note.text(), text);
    assert_eq!(note.signatures().len(), 1);
    assert_eq!(note.to_text(), signed);
}

#[test]
fn key_ids_follow_the_recommended_hash_and_differ_by_type() {
    let key = fresh_key();
    let public = key.public().as_bytes();
    let signer = VerifierKey::new("log.example", VerifierKind::Ed25519, key.public()).unwrap();
    let cosigner =
        VerifierKey::new("log.example", VerifierKind::CosignatureV1, key.public()).unwrap();
    assert_eq!(signer.key_id(), key_id("log.example", 0x01, &public));
    assert_eq!(cosigner.key_id(), key_id("log.example", 0x04, &public));
    assert_ne!(signer.key_id(), cosigner.key_id());
    let encoded = cosigner
        .to_string()
        .splitn(3, '+')
        .nth(2)
        .unwrap()
        .to_string();
    let decoded = STANDARD.decode(encoded).unwrap();
    assert_eq!(decoded[0], 0x04);
    assert_eq!(decoded[1..], public);
    assert_eq!(VerifierKey::parse(&cosigner.to_string()).unwrap(), cosigner);
}

#[test]
fn malformed_notes_are_refused_naming_why() {
    let cases: &[(&str, &str)] = &[
        ("no signature block", "text\n"),
        ("empty signature block", "text\n\n"),
        ("control character", "te\rxt\n\n\u{2014} a AAAAAAA=\n"),
        ("no em dash", "text\n\n- a AAAAAAA=\n"),
        ("no final newline", "text\n\n\u{2014} a AAAAAAA="),
        ("non-canonical base64", "text\n\n\u{2014} a AAAAAAB=\n"),
        ("signature too short", "text\n\n\u{2014} a AAAAAA==\n"),
        ("plus in key name", "text\n\n\u{2014} a+b AAAAAAA=\n"),
        (
            "unicode space in name",
            "text\n\n\u{2014} a\u{a0}b AAAAAAA=\n",
        ),
    ];
    for (what, note) in cases {
        assert!(Note::parse(note.as_bytes()).is_err(), "{what} was accepted");
    }
    let long = format!("{}\n\n\u{2014} a AAAAAAA=\n", "x".repeat(300 * 1024));
    assert!(matches!(
        Note::parse(long.as_bytes()),
        Err(NoteError::TooLong { .. })
    ));
    let many: String = (0..65).map(|_| "\u{2014} a AAAAAAA=\n").collect();
    assert_eq!(
        Note::parse(format!("text\n\n{many}").as_bytes()),
        Err(NoteError::TooManySignatures)
    );
}

#[test]
fn unknown_keys_are_ignored_and_a_failing_known_key_refuses_the_note() {
    let log_key = fresh_key();
    let other_key = fresh_key();
    let vkey = VerifierKey::new("log.example", VerifierKind::Ed25519, log_key.public()).unwrap();
    let text = "log.example\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    let mut note = Note::new(text).unwrap();
    // Same name, other key (so another id); an ML-DSA-sized line of an unknown type; a good one.
    note.push_signature(sign_ed25519(text, "log.example", &other_key).unwrap())
        .unwrap();
    note.push_signature(NoteSignature {
        key_name: "witness.example/pq".to_string(),
        key_id: 7,
        signature: vec![0x55; 8 + 2420],
    })
    .unwrap();
    note.push_signature(sign_ed25519(text, "log.example", &log_key).unwrap())
        .unwrap();
    let reparsed = Note::parse(note.to_text().as_bytes()).unwrap();
    let verified = verify_note(&reparsed, std::slice::from_ref(&vkey)).unwrap();
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0].signature_index, 2);

    // Same name and id as the known key, but a signature over something else.
    let mut forged = Note::new(text).unwrap();
    let mut bad = sign_ed25519(text, "log.example", &log_key).unwrap();
    bad.signature = log_key.sign(b"another text").to_vec();
    forged.push_signature(bad).unwrap();
    forged
        .push_signature(sign_ed25519(text, "log.example", &log_key).unwrap())
        .unwrap();
    assert!(matches!(
        verify_note(&forged, std::slice::from_ref(&vkey)),
        Err(NoteError::BadSignature { .. })
    ));

    let unsigned_by_known = {
        let mut note = Note::new(text).unwrap();
        note.push_signature(sign_ed25519(text, "log.example", &other_key).unwrap())
            .unwrap();
        note
    };
    assert_eq!(
        verify_note(&unsigned_by_known, std::slice::from_ref(&vkey)),
        Err(NoteError::NoKnownSignature)
    );
    assert_eq!(verified_signatures(&unsigned_by_known, &[vkey]), Ok(vec![]));
}

#[test]
fn vkeys_of_other_types_or_with_a_wrong_id_are_refused() {
    let mut mldsa = vec![0x06];
    mldsa.extend_from_slice(&[7u8; 1312]);
    let text = format!("witness.example/pq+01020304+{}", STANDARD.encode(&mldsa));
    assert!(matches!(
        VerifierKey::parse(&text),
        Err(NoteError::UnsupportedKeyType {
            type_byte: 0x06,
            ..
        })
    ));
    let wrong_id = SPEC_VKEY.replace("530d903a", "530d903b");
    assert!(VerifierKey::parse(&wrong_id).is_err());
    let upper_id = SPEC_VKEY.replace("530d903a", "530D903A");
    assert!(VerifierKey::parse(&upper_id).is_err());
    assert!(VerifierKey::parse("example.com/foo+530d903a").is_err());
}

#[test]
fn the_spec_checkpoint_parses_and_formats_back() {
    let checkpoint = Checkpoint::parse(SPEC_CHECKPOINT).unwrap();
    assert_eq!(checkpoint.origin, "example.com/behind-the-sofa");
    assert_eq!(checkpoint.size, 20852163);
    assert_eq!(
        STANDARD.encode(checkpoint.root),
        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    );
    assert_eq!(checkpoint.to_text(), SPEC_CHECKPOINT);
    let extended = format!("{SPEC_CHECKPOINT}ext one\n");
    let checkpoint = Checkpoint::parse(&extended).unwrap();
    assert_eq!(checkpoint.extensions, vec!["ext one".to_string()]);
    assert_eq!(checkpoint.to_text(), extended);
}

#[test]
fn malformed_checkpoints_are_refused() {
    let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
    for (what, text) in [
        ("two lines", "o\n1\n".to_string()),
        ("leading zero", format!("o\n01\n{root}\n")),
        ("sign", format!("o\n+1\n{root}\n")),
        ("overflow", format!("o\n18446744073709551616\n{root}\n")),
        ("short root", "o\n1\nAAAA\n".to_string()),
        ("empty extension", format!("o\n1\n{root}\n\nx\n")),
        ("empty origin", format!("\n1\n{root}\n")),
        ("no final newline", format!("o\n1\n{root}")),
    ] {
        assert!(Checkpoint::parse(&text).is_err(), "{what} was accepted");
    }
    assert!(matches!(
        Checkpoint::parse("o\n0\n"),
        Err(CheckpointError::TooFewLines)
    ));
}

#[test]
fn a_ledger_checkpoint_has_origin_rollbook_dot_ledger_id() {
    let ledger_id = uuid::Uuid::parse_str("018f0000-0000-7000-8000-000000000001").unwrap();
    let root: Hash = [0xab; 32];
    let checkpoint = ledger_checkpoint(ledger_id, 42, root);
    assert_eq!(
        checkpoint.to_text(),
        format!(
            "rollbook.018f0000-0000-7000-8000-000000000001\n42\n{}\n",
            STANDARD.encode(root)
        )
    );
}

#[test]
fn the_cosigned_message_is_the_spec_s_example_byte_for_byte() {
    assert_eq!(
        cosignature::message(1679315147, SPEC_CHECKPOINT),
        format!("cosignature/v1\ntime 1679315147\n{SPEC_CHECKPOINT}").into_bytes()
    );
    // The spec's cosignature line carries that time after its key id.
    let lines = parse_signature_lines(SPEC_COSIGNATURE_LINE.as_bytes()).unwrap();
    assert_eq!(lines[0].signature.len(), 72);
    let time_s = u64::from_be_bytes(lines[0].signature[..8].try_into().unwrap());
    assert_eq!(time_s, 1679315147);
}

#[test]
fn a_cosignature_verifies_under_the_cosigner_vkey_with_its_time_and_not_as_a_signature() {
    let witness_key = fresh_key();
    let line = cosign(
        SPEC_CHECKPOINT,
        "witness.example/w1",
        &witness_key,
        1_700_000_000,
    )
    .unwrap();
    let mut note = Note::new(SPEC_CHECKPOINT).unwrap();
    note.push_signature(line).unwrap();
    let cosigner = VerifierKey::new(
        "witness.example/w1",
        VerifierKind::CosignatureV1,
        witness_key.public(),
    )
    .unwrap();
    let verified = verify_note(&note, std::slice::from_ref(&cosigner)).unwrap();
    assert_eq!(verified[0].time_s, Some(1_700_000_000));
    // The same key as a type 0x01 signer has another id: the line is unknown to it.
    let as_signer = VerifierKey::new(
        "witness.example/w1",
        VerifierKind::Ed25519,
        witness_key.public(),
    )
    .unwrap();
    assert_eq!(
        verify_note(&note, &[as_signer]),
        Err(NoteError::NoKnownSignature)
    );
    // Another checkpoint under the same line fails.
    let mut moved = Note::new(&SPEC_CHECKPOINT.replace("20852163", "20852164")).unwrap();
    moved.push_signature(note.signatures()[0].clone()).unwrap();
    assert!(matches!(
        verify_note(&moved, std::slice::from_ref(&cosigner)),
        Err(NoteError::BadSignature { .. })
    ));
    // A client keeps only the reply lines that are this witness's valid cosignatures.
    let other = cosign(SPEC_CHECKPOINT, "witness.example/w2", &fresh_key(), 5).unwrap();
    let reply = vec![other, note.signatures()[0].clone()];
    let kept = cosignature::verified_cosignatures(SPEC_CHECKPOINT, &reply, &cosigner).unwrap();
    assert_eq!(kept, vec![note.signatures()[0].clone()]);
    let moved_text = SPEC_CHECKPOINT.replace("20852163", "20852164");
    assert!(cosignature::verified_cosignatures(&moved_text, &reply, &cosigner).is_err());
    assert!(cosign(SPEC_CHECKPOINT, "w", &witness_key, 0).is_err());
    assert!(cosign(SPEC_CHECKPOINT, "w", &witness_key, 1 << 63).is_err());
}

fn witness_vkey(name: &str) -> (SecretKey, String) {
    let key = fresh_key();
    let vkey = VerifierKey::new(name, VerifierKind::CosignatureV1, key.public()).unwrap();
    (key, vkey.to_string())
}

#[test]
fn a_two_level_policy_evaluates_its_quorum() {
    let log = VerifierKey::new("rollbook.x", VerifierKind::Ed25519, fresh_key().public()).unwrap();
    let names = ["X1", "X2", "X3", "Y1", "Y2", "Y3"];
    let keys: Vec<(SecretKey, String)> = names
        .iter()
        .map(|n| witness_vkey(&format!("w/{n}")))
        .collect();
    let mut text = format!("# example\nlog {log}\n\n");
    for (name, (_, vkey)) in names.iter().zip(&keys) {
        text.push_str(&format!("witness\t{name} {vkey}\n"));
    }
    text.push_str("group X-witnesses 2 X1 X2 X3\n  group Y-witnesses any Y1 Y2 Y3\n");
    text.push_str("group X-and-Y all X-witnesses Y-witnesses\nquorum X-and-Y\n");
    let policy = Policy::parse(text.as_bytes()).unwrap();
    assert_eq!(policy.logs().len(), 1);
    assert_eq!(policy.witnesses().len(), 6);
    assert!(policy.quorum_met(&["X1", "X3", "Y2"]));
    assert!(!policy.quorum_met(&["X1", "Y2"]));
    assert!(!policy.quorum_met(&["X1", "X2", "X3"]));

    let mut note = Note::new(SPEC_CHECKPOINT).unwrap();
    for index in [0, 2, 4] {
        let name = format!("w/{}", names[index]);
        note.push_signature(
            cosign(SPEC_CHECKPOINT, &name, &keys[index].0, 100 + index as u64).unwrap(),
        )
        .unwrap();
    }
    let cosigners = policy.cosigners(&note).unwrap();
    let named: Vec<&str> = cosigners.iter().map(|c| c.witness_name.as_str()).collect();
    assert_eq!(named, ["X1", "X3", "Y2"]);
    assert_eq!(cosigners[1].time_s, 102);
    assert!(policy.quorum_met(&named));
}

#[test]
fn policies_that_would_weaken_the_check_are_refused_naming_the_line() {
    let (_, w1) = witness_vkey("w/1");
    let log = VerifierKey::new("rollbook.x", VerifierKind::Ed25519, fresh_key().public()).unwrap();
    let mut mldsa = vec![0x06];
    mldsa.extend_from_slice(&[7u8; 1312]);
    let pq = format!("w/pq+01020304+{}", STANDARD.encode(&mldsa));
    let cases = [
        ("quorum none", "quorum none\n".to_string(), 1),
        ("ml-dsa witness", format!("witness A {pq}\nquorum A\n"), 1),
        (
            "signer key as witness",
            format!("witness A {log}\nquorum A\n"),
            1,
        ),
        ("witness key as log", format!("log {w1}\nquorum none\n"), 1),
        ("no quorum", format!("witness A {w1}\n"), 2),
        (
            "two quorums",
            format!("witness A {w1}\nquorum A\nquorum A\n"),
            3,
        ),
        ("undefined name", format!("witness A {w1}\nquorum B\n"), 2),
        (
            "later definition",
            format!("group G any A\nwitness A {w1}\nquorum G\n"),
            1,
        ),
        (
            "duplicate key",
            format!("witness A {w1}\nwitness B {w1}\nquorum A\n"),
            2,
        ),
        (
            "threshold too big",
            format!("witness A {w1}\ngroup G 2 A\nquorum G\n"),
            2,
        ),
        (
            "threshold zero",
            format!("witness A {w1}\ngroup G 0 A\nquorum G\n"),
            2,
        ),
        (
            "member twice",
            format!("witness A {w1}\ngroup G any A\ngroup H any A\nquorum G\n"),
            3,
        ),
        (
            "none as member",
            format!("witness A {w1}\ngroup G any none\nquorum G\n"),
            2,
        ),
        (
            "carriage return",
            format!("witness A {w1}\r\nquorum A\n"),
            1,
        ),
        ("unknown keyword", format!("witness A {w1}\nquorums A\n"), 2),
    ];
    for (what, text, line) in cases {
        let error = Policy::parse(text.as_bytes()).expect_err(what);
        assert_eq!(error.line, line, "{what}: {error}");
    }
}
