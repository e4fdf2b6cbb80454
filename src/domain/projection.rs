//! The `proposals` projection: one row per proposal or governance motion, derived from events
//! alone. Pure: the store turns these operations into SQL in the same transaction as the events,
//! and `rollbook rebuild` replays them from seq 1, so rebuilt == incremental by construction.

use crate::domain::envelope::StoredEvent;
use crate::domain::events::Event;
use crate::domain::proposal::Status;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalRow {
    pub proposal_id: String,
    pub kind: String,
    pub status: String,
    pub verdict: Option<String>,
    pub proposer: String,
    pub contracts_requested: Option<i64>,
    pub created_at: String,
    pub expires_at: String,
    pub signer_set_version: i64,
    pub policy_version: i64,
    pub signature_count: i64,
    /// Co-signers in signing order: `key_id|recorded_at` entries joined by `,` (key ids are
    /// base64 and timestamps canonical, so neither separator occurs inside an entry).
    pub signers: String,
    pub first_seq: i64,
    pub last_seq: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectionOp {
    Insert(ProposalRow),
    Signed {
        proposal_id: String,
        key_id: String,
        seq: i64,
    },
    Status {
        proposal_id: String,
        status: &'static str,
        seq: i64,
    },
}

/// The projection changes an event causes. Events of unknown types change nothing here (the
/// full verifier reports them); a payload that does not parse is the caller's error.
pub fn ops_for(event: &StoredEvent, payload: &Event) -> Vec<ProjectionOp> {
    let seq = event.seq as i64;
    match payload {
        Event::LedgerCreated(_) | Event::SignerSetAdopted(_) | Event::PolicyAdopted(_) => vec![],
        Event::ProposalRecorded(p) => {
            let status = if p.terms.verdict.as_deref() == Some("fail") {
                "failed"
            } else {
                "pending"
            };
            vec![ProjectionOp::Insert(ProposalRow {
                proposal_id: p.terms.proposal_id.clone(),
                kind: p.terms.kind.as_str().to_string(),
                status: status.to_string(),
                verdict: p.terms.verdict.clone(),
                proposer: p.signature.key_id.clone(),
                contracts_requested: p.terms.contracts_requested.map(i64::from),
                created_at: p.terms.created_at.clone(),
                expires_at: p.terms.expires_at.clone(),
                signer_set_version: p.terms.signer_set_version as i64,
                policy_version: p.terms.policy_version as i64,
                signature_count: 0,
                signers: String::new(),
                first_seq: seq,
                last_seq: seq,
            })]
        }
        Event::ProposalSigned(p) => {
            vec![ProjectionOp::Signed {
                proposal_id: p.proposal_id.clone(),
                key_id: p.signature.key_id.clone(),
                seq,
            }]
        }
        Event::ProposalCommitted(p) => {
            vec![ProjectionOp::Status {
                proposal_id: p.proposal_id.clone(),
                status: "committed",
                seq,
            }]
        }
        Event::ProposalRejected(p) => {
            vec![ProjectionOp::Status {
                proposal_id: p.proposal_id.clone(),
                status: "rejected",
                seq,
            }]
        }
        Event::ProposalWithdrawn(p) => {
            vec![ProjectionOp::Status {
                proposal_id: p.proposal_id.clone(),
                status: "withdrawn",
                seq,
            }]
        }
        Event::ProposalExpired(p) => {
            vec![ProjectionOp::Status {
                proposal_id: p.proposal_id.clone(),
                status: "expired",
                seq,
            }]
        }
        // The status after an execution (`committed` while partially executed, `executed`,
        // `execution_breach`), as `decide_execute` decided it and the verifier re-derives it.
        Event::RollExecuted(p) => Status::parse(&p.status)
            .map(|status| ProjectionOp::Status {
                proposal_id: p.proposal_id.clone(),
                status: status.as_str(),
                seq,
            })
            .into_iter()
            .collect(),
    }
}

/// Splits a projection row's `signers` column into (key id, recorded_at) pairs.
pub fn signer_entries(signers: &str) -> Vec<(String, String)> {
    signers
        .split(',')
        .filter(|entry| !entry.is_empty())
        .map(|entry| match entry.split_once('|') {
            Some((key_id, at)) => (key_id.to_string(), at.to_string()),
            None => (entry.to_string(), String::new()),
        })
        .collect()
}
