//! The witness's pure core: every status code of c2sp.org/tlog-witness `add-checkpoint`, decided
//! over real RFC 9162 trees and real signatures, and the state it hands back to be stored.

use rollbook::crypto::merkle::{
    consistency_proof, empty_root, leaf_hash, root_from_leaf_hashes, Hash,
};
use rollbook::crypto::SecretKey;
use rollbook::tlog::checkpoint::Checkpoint;
use rollbook::tlog::note::{sign_ed25519, verify_note, Note, VerifierKey, VerifierKind};
use rollbook::tlog::witness::{
    AddCheckpoint, ConfigError, Decision, RequestError, Witness, WitnessState, CONTENT_TYPE_SIZE,
};

const ORIGIN: &str = "rollbook.0190aaaa-0000-7000-8000-000000000001";
const NOW_S: u64 = 1_765_000_000;

struct Log {
    key: SecretKey,
    leaves: Vec<Hash>,
}

impl Log {
    fn new(leaf_count: u64, salt: u8) -> Log {
        Log {
            key: SecretKey::generate().unwrap(),
            leaves: (0..leaf_count)
                .map(|i| leaf_hash(&[salt, i as u8]))
                .collect(),
        }
    }

    fn vkey(&self) -> VerifierKey {
        VerifierKey::new(ORIGIN, VerifierKind::Ed25519, self.key.public()).unwrap()
    }

    fn root(&self, size: u64) -> Hash {
        root_from_leaf_hashes(&self.leaves[..size as usize])
    }

    fn note(&self, size: u64) -> Note {
        self.note_with_root(size, self.root(size))
    }

    fn note_with_root(&self, size: u64, root: Hash) -> Note {
        let text = Checkpoint {
            origin: ORIGIN.to_string(),
            size,
            root,
            extensions: vec![],
        }
        .to_text();
        let mut note = Note::new(&text).unwrap();
        note.push_signature(sign_ed25519(&text, ORIGIN, &self.key).unwrap())
            .unwrap();
        note
    }

    fn request(&self, old_size: u64, size: u64) -> AddCheckpoint {
        let proof = consistency_proof(&self.leaves, old_size, size).unwrap();
        parse(&AddCheckpoint::format(old_size, &proof, &self.note(size)))
    }
}

fn parse(body: &str) -> AddCheckpoint {
    AddCheckpoint::parse(body.as_bytes()).unwrap()
}

fn witness_for(log: &Log) -> Witness {
    Witness::new(
        "witness.example/w1",
        SecretKey::generate().unwrap(),
        vec![log.vkey()],
    )
    .unwrap()
}

fn state_of(decision: &Decision) -> Option<WitnessState> {
    let note = decision.new_state.as_ref()?;
    Some(
        WitnessState::from_stored(note.to_text().as_bytes())
            .unwrap()
            .1,
    )
}

#[test]
fn a_first_checkpoint_is_cosigned_and_becomes_the_state() {
    let log = Log::new(8, 1);
    let witness = witness_for(&log);
    let decision = witness.decide(&log.request(0, 5), None, NOW_S);
    assert_eq!(decision.response.status, 200, "{}", decision.response.body);
    let mut cosigned = log.note(5);
    for line in
        rollbook::tlog::note::parse_signature_lines(decision.response.body.as_bytes()).unwrap()
    {
        cosigned.push_signature(line).unwrap();
    }
    let verified = verify_note(&cosigned, &[witness.vkey().clone()]).unwrap();
    assert_eq!(verified[0].time_s, Some(NOW_S));
    assert_eq!(decision.new_state.as_ref(), Some(&cosigned));
    assert_eq!(
        state_of(&decision),
        Some(WitnessState {
            size: 5,
            root: log.root(5)
        })
    );
}

#[test]
fn a_consistent_extension_is_cosigned_and_a_wrong_old_size_gets_409_with_the_size_held() {
    let log = Log::new(16, 2);
    let witness = witness_for(&log);
    let held = WitnessState {
        size: 5,
        root: log.root(5),
    };
    let decision = witness.decide(&log.request(5, 13), Some(held), NOW_S);
    assert_eq!(decision.response.status, 200, "{}", decision.response.body);
    assert_eq!(state_of(&decision).unwrap().size, 13);

    let conflict = witness.decide(&log.request(0, 13), Some(held), NOW_S);
    assert_eq!(conflict.response.status, 409);
    assert_eq!(conflict.response.content_type, CONTENT_TYPE_SIZE);
    assert_eq!(conflict.response.body, "5\n");
    assert_eq!(conflict.new_state, None);
    let conflict = witness.decide(&log.request(3, 13), None, NOW_S);
    assert_eq!(
        (conflict.response.status, conflict.response.body.as_str()),
        (409, "0\n")
    );
}

#[test]
fn a_fork_is_refused_422_and_never_cosigned() {
    let log = Log::new(16, 3);
    let fork = Log {
        key: log.key.clone_for_test(),
        leaves: (0..16u8)
            .map(|i| leaf_hash(&[if i < 4 { 3 } else { 9 }, i]))
            .collect(),
    };
    let witness = witness_for(&log);
    let held = WitnessState {
        size: 6,
        root: log.root(6),
    };
    // The fork shares 4 leaves; its proof from 6 is honest for the fork, not for what was seen.
    let decision = witness.decide(&fork.request(6, 10), Some(held), NOW_S);
    assert_eq!(decision.response.status, 422, "{}", decision.response.body);
    assert_eq!(decision.new_state, None);
    // Same size, another root.
    let same_size = parse(&AddCheckpoint::format(6, &[], &fork.note(6)));
    let decision = witness.decide(&same_size, Some(held), NOW_S);
    assert_eq!(decision.response.status, 422, "{}", decision.response.body);
    // A garbled proof of the right length.
    let mut proof = consistency_proof(&log.leaves, 6, 10).unwrap();
    proof[0][0] ^= 1;
    let garbled = parse(&AddCheckpoint::format(6, &proof, &log.note(10)));
    assert_eq!(
        witness.decide(&garbled, Some(held), NOW_S).response.status,
        422
    );
    // Re-submitting exactly what was cosigned is cosigned again.
    let again = parse(&AddCheckpoint::format(6, &[], &log.note(6)));
    assert_eq!(
        witness.decide(&again, Some(held), NOW_S).response.status,
        200
    );
}

#[test]
fn size_zero_needs_the_empty_root_and_old_size_zero_needs_no_proof() {
    let log = Log::new(4, 4);
    let witness = witness_for(&log);
    let empty = parse(&AddCheckpoint::format(
        0,
        &[],
        &log.note_with_root(0, empty_root()),
    ));
    assert_eq!(witness.decide(&empty, None, NOW_S).response.status, 200);
    let not_empty = parse(&AddCheckpoint::format(
        0,
        &[],
        &log.note_with_root(0, [7; 32]),
    ));
    assert_eq!(witness.decide(&not_empty, None, NOW_S).response.status, 422);
    let with_proof = parse(&AddCheckpoint::format(0, &[[1; 32]], &log.note(4)));
    assert_eq!(
        witness.decide(&with_proof, None, NOW_S).response.status,
        422
    );
}

#[test]
fn old_size_above_the_checkpoint_is_400_unknown_origin_404_and_bad_signatures_403() {
    let log = Log::new(8, 5);
    let witness = witness_for(&log);
    let backwards = parse(&AddCheckpoint::format(7, &[], &log.note(3)));
    assert_eq!(witness.decide(&backwards, None, NOW_S).response.status, 400);

    let stranger = Witness::new(
        "witness.example/w1",
        SecretKey::generate().unwrap(),
        vec![VerifierKey::new("rollbook.other", VerifierKind::Ed25519, log.key.public()).unwrap()],
    )
    .unwrap();
    assert_eq!(
        stranger
            .decide(&log.request(0, 3), None, NOW_S)
            .response
            .status,
        404
    );

    let impostor = Log::new(8, 5);
    assert_eq!(
        witness
            .decide(&impostor.request(0, 3), None, NOW_S)
            .response
            .status,
        403
    );

    let mut forged = log.note(3);
    let text = forged.text().to_string();
    let mut bad = sign_ed25519(&text, ORIGIN, &log.key).unwrap();
    bad.signature[0] ^= 1;
    forged = {
        let mut note = Note::new(&text).unwrap();
        note.push_signature(forged.signatures()[0].clone()).unwrap();
        note.push_signature(bad).unwrap();
        note
    };
    let request = parse(&AddCheckpoint::format(0, &[], &forged));
    let decision = witness.decide(&request, None, NOW_S);
    assert_eq!(decision.response.status, 403, "{}", decision.response.body);
    assert_eq!(decision.new_state, None);
}

#[test]
fn malformed_bodies_are_refused_before_any_decision() {
    let log = Log::new(4, 6);
    let note = log.note(4).to_text();
    for (what, body) in [
        ("no old line", note.clone()),
        ("old with leading zero", format!("old 01\n\n{note}")),
        ("no separator", format!("old 0\n{note}")),
        ("short proof hash", format!("old 1\nAAAA\n\n{note}")),
    ] {
        assert!(
            AddCheckpoint::parse(body.as_bytes()).is_err(),
            "{what} was accepted"
        );
    }
    let many: String = (0..64)
        .map(|_| format!("{}\n", "A".repeat(43) + "="))
        .collect();
    assert_eq!(
        AddCheckpoint::parse(format!("old 1\n{many}\n{note}").as_bytes()),
        Err(RequestError::TooManyProofLines)
    );
}

#[test]
fn a_ledger_s_key_is_never_a_witness_key() {
    let log = Log::new(1, 7);
    let refused = Witness::new(
        "witness.example/w1",
        log.key.clone_for_test(),
        vec![log.vkey()],
    );
    assert!(matches!(refused, Err(ConfigError::KeyIsALogKey { .. })));
    let cosigner_as_log =
        VerifierKey::new(ORIGIN, VerifierKind::CosignatureV1, log.key.public()).unwrap();
    let refused = Witness::new("w", SecretKey::generate().unwrap(), vec![cosigner_as_log]);
    assert!(matches!(refused, Err(ConfigError::LogKeyType { .. })));
}

/// A second handle on the same key (SecretKey is deliberately not Clone).
trait CloneForTest {
    fn clone_for_test(&self) -> SecretKey;
}

impl CloneForTest for SecretKey {
    fn clone_for_test(&self) -> SecretKey {
        SecretKey::parse(&self.to_pkcs8_pem_v1()).unwrap()
    }
}

#[test]
fn the_state_is_canonical_and_a_note_without_room_for_the_cosignature_is_400() {
    use rollbook::tlog::note::{NoteSignature, NOTE_LEN_MAX_BYTES, NOTE_SIGNATURES_MAX};
    let log = Log::new(8, 1);
    let witness = witness_for(&log);
    let proof = consistency_proof(&log.leaves, 0, 5).unwrap();
    let padded = |lines: Vec<NoteSignature>| {
        let mut note = log.note(5);
        for line in lines {
            note.push_signature(line).unwrap();
        }
        AddCheckpoint::format(0, &proof, &note)
    };
    // A junk line claiming the witness's own name and key id, and an unknown key's line: the
    // witness cosigns, and stores only the log's signature and its own cosignature.
    let own = NoteSignature {
        key_name: "witness.example/w1".into(),
        key_id: witness.vkey().key_id(),
        signature: vec![7; 72],
    };
    let stranger = NoteSignature {
        key_name: "stranger".into(),
        key_id: 1,
        signature: vec![1; 64],
    };
    let request = parse(&padded(vec![own, stranger]));
    let decision = witness.decide(&request, None, NOW_S);
    assert_eq!(decision.response.status, 200, "{}", decision.response.body);
    let state = decision.new_state.clone().unwrap();
    assert_eq!(
        state.signatures().len(),
        2,
        "the log's line and the witness's own"
    );
    let reparsed = Note::parse(state.to_text().as_bytes()).unwrap();
    let verified = verify_note(&reparsed, &[log.vkey(), witness.vkey().clone()]).unwrap();
    assert_eq!(verified.len(), 2);
    // 64 lines: no room for the cosignature, 400, nothing stored.
    let full: Vec<NoteSignature> = (0..NOTE_SIGNATURES_MAX - 1)
        .map(|i| NoteSignature {
            key_name: format!("unknown{i}"),
            key_id: i as u32,
            signature: vec![1; 64],
        })
        .collect();
    let decision = witness.decide(&parse(&padded(full)), None, NOW_S);
    assert_eq!(decision.response.status, 400, "{}", decision.response.body);
    assert!(decision.new_state.is_none());
    // One huge unknown line, the note just under the length limit: 400, nothing stored.
    let base = log.note(5).to_text().len();
    let name_room = 200;
    // The line is `— name base64(id || bytes)\n`: about 20 bytes short of the limit.
    let b64 = NOTE_LEN_MAX_BYTES - base - 20 - (4 + name_room + 2);
    let bytes = b64 / 4 * 3 - 4;
    let huge = NoteSignature {
        key_name: "x".repeat(name_room),
        key_id: 9,
        signature: vec![1; bytes],
    };
    let body = padded(vec![huge]);
    let request = parse(&body);
    let len = request.note.to_text().len();
    assert!(
        len <= NOTE_LEN_MAX_BYTES && len > NOTE_LEN_MAX_BYTES - 40,
        "{len}"
    );
    let decision = witness.decide(&request, None, NOW_S);
    assert_eq!(decision.response.status, 400, "{}", decision.response.body);
    assert!(decision.new_state.is_none());
}
