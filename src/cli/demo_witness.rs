//! The demo's witness: a tlog-witness started in this process on a loopback port, the desk's
//! checkpoints sent to it, and the reviewer's policy naming it.

use std::sync::Arc;

use uuid::Uuid;

use super::{CliError, CliResult, EXIT_CHECK_FAILED, EXIT_IO};
use crate::audit::completeness::{check_completeness, log_key, Completeness, WitnessCheck};
use crate::audit::FileVerification;
use crate::checkpoint::WitnessOutcome;
use crate::crypto::{to_hex, SecretKey};
use crate::domain::governance::ActiveSet;
use crate::service::Ledger;
use crate::tlog::witness::Witness;
use crate::tlog::{Policy, VerifierKey, VerifierKind};
use crate::witness_service::{StateDir, WitnessService};

/// The demo witness's key name (its cosignature lines carry it).
const NAME: &str = "demo.witness.example/w1";

/// A running demo witness: its submission URL and the policy line a reviewer trusts it by.
pub struct DemoWitness {
    pub url: String,
    vkey: VerifierKey,
    /// Its state directory: private (0700), unpredictably named, removed when the demo ends.
    state: tempfile::TempDir,
}

/// Starts a witness on 127.0.0.1 (a free port) knowing the ledger by the keys of `set`, with a
/// fresh key and a private state directory of its own (`tempfile::TempDir`: a predictable name
/// in a shared temp directory could be a symlink planted by another user).
pub async fn start(ledger_id: Uuid, set: &ActiveSet) -> Result<DemoWitness, CliError> {
    let io = |what: &str, error: &dyn std::fmt::Display| {
        CliError::new(EXIT_IO, format!("demo witness: {what}: {error}"))
    };
    let key = SecretKey::generate().map_err(|e| io("a key", &e))?;
    let vkey = VerifierKey::new(NAME, VerifierKind::CosignatureV1, key.public())
        .map_err(|e| io("its vkey", &e))?;
    let logs = set
        .signers
        .iter()
        .map(|signer| log_key(ledger_id, signer.key))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| io("the ledger's vkeys", &e))?;
    let witness = Witness::new(NAME, key, logs).map_err(|e| io("configuration", &e))?;
    let dir = tempfile::Builder::new()
        .prefix("rollbook-demo-witness-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .map_err(|e| io("its state directory", &e))?;
    let state = StateDir::open(dir.path()).map_err(|e| io("state", &e))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| io("listen", &e))?;
    let address = listener.local_addr().map_err(|e| io("address", &e))?;
    let service = Arc::new(WitnessService::new(witness, state));
    // Served on this process's runtime while the demo awaits its requests (the client posts
    // from a blocking thread); it ends with the demo.
    tokio::spawn(crate::tlog_http::serve(listener, service));
    Ok(DemoWitness {
        url: format!("http://{address}"),
        vkey,
        state: dir,
    })
}

impl DemoWitness {
    /// Where its state lives (while the demo runs).
    pub fn state_dir(&self) -> &std::path::Path {
        self.state.path()
    }

    /// The reviewer's tlog-policy: this witness, quorum of it.
    pub fn policy_text(&self) -> String {
        format!("witness w1 {}\nquorum w1\n", self.vkey)
    }

    /// `rollbook checkpoint --key KEY --witness URL --witness-vkey VKEY`: syncs this machine's pin, signs the head
    /// with `key`, has the witness cosign it; fails unless it cosigned.
    pub async fn checkpoint(&self, ledger: &Ledger, key: &SecretKey, signer: &str) -> CliResult {
        let dir = crate::pin::state_dir()?;
        let verified = crate::pin::sync(&ledger.store, ledger.ledger_id, &dir).await?;
        let outcome = super::checkpoint::sign_and_witness(
            &ledger.store,
            &verified,
            key,
            &[crate::checkpoint::WitnessTarget {
                url: self.url.clone(),
                vkey: self.vkey.clone(),
            }],
        )
        .await;
        verified.close().await;
        let (_, checkpoint, witnesses) = outcome?;
        println!(
            "{signer} signed the head (tree size {}, root {}) as rollbook.{}",
            checkpoint.tree_size,
            to_hex(&checkpoint.root),
            ledger.ledger_id
        );
        match witnesses.first() {
            Some((url, WitnessOutcome::Cosigned { .. })) => {
                println!(
                    "the witness at {url} cosigned it (consistent with all it cosigned before)"
                );
                Ok(super::EXIT_OK)
            }
            other => Err(CliError::new(
                EXIT_CHECK_FAILED,
                format!("the demo witness did not cosign: {other:?}"),
            )),
        }
    }

    /// The reviewer's completeness check of a verified export under this witness's policy,
    /// with cosignatures at most a day old.
    pub fn check(&self, verified: &FileVerification) -> Result<Completeness, CliError> {
        let failed = |reason: String| CliError::new(EXIT_CHECK_FAILED, reason);
        let policy = Policy::parse(self.policy_text().as_bytes())
            .map_err(|error| failed(error.to_string()))?;
        let check = WitnessCheck {
            policy,
            max_age: Some(chrono::Duration::hours(24)),
            now: chrono::Utc::now(),
        };
        let ledger_id = Uuid::parse_str(&verified.summary.ledger_id)
            .map_err(|error| failed(error.to_string()))?;
        check_completeness(
            ledger_id,
            verified.summary.events,
            verified.signed.last.as_ref(),
            &verified.signed.ledger_keys,
            verified.signed.clock_skew_max_seconds,
            &check,
        )
        .map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::{SignerEntry, SignerSet};

    #[tokio::test]
    async fn the_state_directory_is_private_and_not_the_predictable_path() {
        let key = SecretKey::generate().unwrap();
        let set = ActiveSet::validate(&SignerSet {
            version: 1,
            threshold: 1,
            signers: vec![SignerEntry {
                name: "alice".into(),
                role: None,
                public_key: to_hex(&key.public().as_bytes()),
                key_id: key.public().key_id().to_string(),
                valid_after: None,
                valid_before: None,
            }],
        })
        .unwrap();
        let ledger_id = Uuid::now_v7();
        let first = start(ledger_id, &set).await.unwrap();
        let second = start(ledger_id, &set).await.unwrap();
        let predictable = std::env::temp_dir().join(format!("rollbook-demo-witness-{ledger_id}"));
        assert_ne!(first.state_dir(), predictable);
        assert_ne!(first.state_dir(), second.state_dir());
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(first.state_dir()).unwrap().permissions(),
        );
        assert_eq!(mode & 0o077, 0, "only its owner reads it: {mode:o}");
        let path = first.state_dir().to_path_buf();
        drop(first);
        assert!(!path.exists(), "removed with the demo");
    }
}
