//! C2SP transparency-log formats, as rollbook speaks them: signed notes (c2sp.org/signed-note),
//! checkpoints (c2sp.org/tlog-checkpoint), Ed25519 cosignatures (c2sp.org/tlog-cosignature,
//! `cosignature/v1`), the witness protocol's `add-checkpoint` (c2sp.org/tlog-witness) and trust
//! policies (c2sp.org/tlog-policy). `docs/audit-format.md` ("Signed notes, checkpoints and
//! witnesses") documents every byte.
//!
//! Architecture invariant: everything here is pure. Text and keys in, text and decisions out; no
//! files, no network, no clock (the witness takes `now` as an argument). The witness's HTTP
//! server, its state files and the client live in the shell (`cli::witness`, `tlog_http`).
//! Signatures are made and checked by `crypto::keys` (ed25519-dalek, `verify_strict`), hashes by
//! sha2; the Merkle consistency proof is `crypto::merkle::verify_consistency`.
//!
//! This module is the one place where the bytes of a note, a checkpoint and a cosigned message are
//! laid out (the signed-note formats are fixed by C2SP, so they are not length-prefixed like
//! `crypto::canonical`'s).
//!
//! Ed25519 only: signer signatures are type 0x01, cosignatures type 0x04. Signatures of other
//! types (ML-DSA-44 cosignatures, type 0x06; ECDSA; RFC 6962) are kept in a note but never count:
//! they are unknown keys, which the signed-note spec says verifiers ignore.
//!
//! The public API, in the order a log and a witness use it:
//! - `checkpoint::ledger_checkpoint(ledger_id, size, root)`: the checkpoint body of a ledger,
//!   origin `rollbook.<ledger_id>`; `Checkpoint::parse` / `to_text`.
//! - `note::sign_ed25519(text, key_name, key)`: a signature line; `Note::new(text)`,
//!   `Note::push_signature`, `Note::to_text` (byte-exact), `Note::parse`.
//! - `note::VerifierKey`: vkeys (`name+hexid+base64(type||key)`) of type 0x01 and 0x04;
//!   `note::verified_signatures(note, known)` (unknown keys ignored, a failing known key refuses
//!   the note), `note::verify_note` (also refuses a note no known key signed).
//! - `cosignature::cosign(checkpoint_text, name, key, time_s)` and `cosignature::message`.
//! - `witness::AddCheckpoint::parse`/`format`, `witness::Witness::decide(request, stored, now)`.
//! - `policy::Policy::parse`, `Policy::cosigners`, `Policy::quorum_met`.

pub mod checkpoint;
pub mod cosignature;
pub mod note;
pub mod policy;
pub mod witness;

pub use checkpoint::{ledger_checkpoint, ledger_origin, Checkpoint, CheckpointError};
pub use note::{Note, NoteError, NoteSignature, VerifiedSignature, VerifierKey, VerifierKind};
pub use policy::{Policy, PolicyError};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Standard base64 with padding (RFC 4648 section 4), the encoding of every C2SP format.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard padded base64, and only its canonical spelling (zero trailing bits), so one
/// value has one text and a re-formatted note is byte-identical to the one parsed.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = STANDARD.decode(text).ok()?;
    (STANDARD.encode(&bytes) == text).then_some(bytes)
}
