//! The roll as executed: what a committed roll approved (`ApprovedTerms`), the executions
//! recorded on it so far (`ExecutableRoll`, folded from its stream), and the rule that records
//! new fills (`decide_execute`): within the approved bounds the roll becomes `executed` (or stays
//! `committed`, partially executed); outside them the fills are recorded all the same, as an
//! execution breach. Pure: time is an argument, the signature arrives already made.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::chain::{check_bound_head, Chain};
use super::envelope::{format_timestamp, parse_canonical_uuid, parse_timestamp, StoredEvent};
use super::events::{Event, Fill, ProposalKind, ProposalRecorded, RollExecuted, SignatureEnvelope};
use super::governance::{verify_envelope, Governance, VerifiedSignatures};
use super::proposal::{ProposalState, Status};
use super::refusal::{Mismatch, Refusal};
use crate::crypto::canonical::{
    decode_execution_message, execution_digest, execution_message, ChainHead, FillInput,
};
use crate::sizing::Proposal;

/// At most this many fills per execution, and this many corrected executions.
pub const FILLS_MAX: usize = 256;
/// A broker reference is 1 to this many printable characters.
pub const BROKER_REF_CHARS_MAX: usize = 64;
/// Executions of a roll are recorded until this long after its window ended: fills arrive from
/// the broker within a day, corrections of them within weeks. It bounds what a verifier keeps.
pub const EXECUTION_RECORDING_GRACE_DAYS: i64 = 30;

/// What a committed roll approved: the requested contracts, the next layer's premium, the
/// execution window, and the policy's `structure.quote_deviation_max` in force when the roll
/// was recorded (and so when it committed: a commit needs the policy it was recorded under).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovedTerms {
    pub contracts: u32,
    pub premium_usd: f64,
    pub execute_after: DateTime<Utc>,
    pub execute_before: DateTime<Utc>,
    pub quote_deviation_max: f64,
}

impl ApprovedTerms {
    /// The terms `recorded` approved, its body's part already read (`BodyTerms`).
    pub fn of(recorded: &ProposalRecorded, body: BodyTerms, quote_deviation_max: f64) -> Self {
        ApprovedTerms {
            contracts: recorded.terms.contracts_requested.unwrap_or(body.contracts),
            premium_usd: body.premium_usd,
            execute_after: body.execute_after,
            execute_before: body.execute_before,
            quote_deviation_max,
        }
    }
}

/// What `ApprovedTerms` takes from a roll's TOML body: its size (when the recording names
/// none), premium and window. The auditor reads it from the body it parses to check the
/// recording and keeps it with the open proposal (`ProposalState::body_terms`), so a commit
/// does not parse the body a second time on its one sequential thread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BodyTerms {
    contracts: u32,
    premium_usd: f64,
    execute_after: DateTime<Utc>,
    execute_before: DateTime<Utc>,
}

impl BodyTerms {
    pub fn of(proposal: &Proposal) -> BodyTerms {
        BodyTerms {
            contracts: proposal.next_layer.contracts,
            premium_usd: proposal.next_layer.premium_usd,
            execute_after: proposal.roll.execute_after,
            execute_before: proposal.roll.execute_before,
        }
    }

    /// Reads them from a roll's body.
    pub fn parse(body: &str) -> Result<BodyTerms, Refusal> {
        let proposal =
            Proposal::from_toml_str(body).map_err(|error| Refusal::ApprovedTermsUnreadable {
                reason: error.to_string(),
            })?;
        Ok(BodyTerms::of(&proposal))
    }
}

/// One execution recorded on a roll: its event id, its contracts, and whether a later
/// execution corrected it (its fills then no longer count).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    pub event_id: Uuid,
    pub contracts: u64,
    pub corrected: bool,
}

/// A committed roll as an execution needs it: 112 bytes and 32 per execution, not its
/// proposal's body and report (a verifier keeps one per roll whose recording window is open).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutableRoll {
    /// Also the key a verifier holds the roll under: 16 bytes twice, kept so that a roll names
    /// itself wherever it goes (the execution message, refusals, its saved row).
    pub proposal_id: Uuid,
    pub subject_digest: [u8; 32],
    pub approved: ApprovedTerms,
    pub status: Status,
    /// A `u32`, not the store's `u64`: 8 bytes less for every roll held. A roll's stream is its
    /// recording, a signature per signer, its commit and its executions; one longer than
    /// `u32::MAX` events is refused (`Refusal::RollStreamFull`).
    pub stream_version: u32,
    pub executions: Executions,
}

/// The executions recorded on a roll, behind one thin pointer (a `Vec`'s three words or a
/// boxed slice's two would be paid by every roll held; most are executed a few times at most,
/// many never). Saved as the list it holds.
#[derive(Debug, Clone, Default, PartialEq)]
// The box is the point: an `Option<Box<Vec<..>>>` is one word, and allocates only once a roll
// is executed.
#[allow(clippy::box_collection)]
pub struct Executions(Option<Box<Vec<ExecutionRecord>>>);

impl Executions {
    fn push(&mut self, record: ExecutionRecord) {
        self.0.get_or_insert_default().push(record);
    }
}

impl std::ops::Deref for Executions {
    type Target = [ExecutionRecord];

    fn deref(&self) -> &[ExecutionRecord] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl std::ops::DerefMut for Executions {
    fn deref_mut(&mut self) -> &mut [ExecutionRecord] {
        self.0.as_deref_mut().map_or(&mut [], Vec::as_mut_slice)
    }
}

impl Serialize for Executions {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Executions {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let records = Vec::<ExecutionRecord>::deserialize(deserializer)?;
        Ok(Executions((!records.is_empty()).then(|| Box::new(records))))
    }
}

/// `version` as a roll's stream version, unless its stream is longer than a roll's may be.
fn roll_stream_version(proposal_id: Uuid, version: u64) -> Result<u32, Refusal> {
    u32::try_from(version).map_err(|_| Refusal::RollStreamFull { proposal_id })
}

impl ExecutableRoll {
    /// A committed roll before any execution, from its folded state.
    pub fn committed(state: &ProposalState, quote_deviation_max: f64) -> Result<Self, Refusal> {
        if state.recorded.terms.kind != ProposalKind::Roll {
            return Err(Refusal::NotExecutable {
                proposal_id: state.id,
                what: format!("a {} motion", state.recorded.terms.kind.as_str()),
            });
        }
        if !state.status.is_committed() {
            return Err(Refusal::NotExecutable {
                proposal_id: state.id,
                what: state.status.to_string(),
            });
        }
        let body = match state.body_terms {
            Some(kept) => {
                debug_assert_eq!(
                    BodyTerms::parse(&state.recorded.terms.body).ok(),
                    Some(kept),
                    "the kept body terms are those of the body"
                );
                kept
            }
            // A state resumed from a client's saved state, or folded from a stream.
            None => BodyTerms::parse(&state.recorded.terms.body)?,
        };
        Ok(ExecutableRoll {
            proposal_id: state.id,
            subject_digest: state.digest,
            approved: ApprovedTerms::of(&state.recorded, body, quote_deviation_max),
            status: Status::Committed,
            stream_version: roll_stream_version(state.id, state.stream_version)?,
            executions: Executions::default(),
        })
    }

    /// A roll's stream folded: the committed roll and every execution recorded on it.
    pub fn from_stream(events: &[StoredEvent], quote_deviation_max: f64) -> Result<Self, Refusal> {
        let state = ProposalState::from_stream(events)?;
        let mut roll = Self::committed(&state, quote_deviation_max)?;
        for event in events {
            if let Event::RollExecuted(executed) = super::proposal::parse_event(event)? {
                roll.evolve(&executed, event)?;
            }
        }
        roll.stream_version = roll_stream_version(state.id, state.stream_version)?;
        Ok(roll)
    }

    /// Applies an execution decided by `decide_execute` (state changes only, no rules), unless
    /// it would make the roll's stream longer than a roll's may be.
    pub fn evolve(&mut self, executed: &RollExecuted, stored: &StoredEvent) -> Result<(), Refusal> {
        let stream_version = roll_stream_version(self.proposal_id, stored.stream_version)?;
        for id in &executed.corrects {
            if let Some(record) = self
                .executions
                .iter_mut()
                .find(|record| record.event_id.to_string() == *id)
            {
                record.corrected = true;
            }
        }
        self.executions.push(ExecutionRecord {
            event_id: stored.event_id,
            contracts: contracts_of(&executed.fills),
            corrected: false,
        });
        if let Some(status) = Status::parse(&executed.status) {
            self.status = status;
        }
        self.stream_version = stream_version;
        Ok(())
    }

    /// The last chain time an execution of this roll may be recorded at.
    pub fn recording_deadline(&self) -> DateTime<Utc> {
        self.approved
            .execute_before
            .checked_add_signed(Duration::days(EXECUTION_RECORDING_GRACE_DAYS))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

fn contracts_of(fills: &[Fill]) -> u64 {
    fills.iter().map(|fill| u64::from(fill.contracts)).sum()
}

/// The rules on an execution's fills and corrections, wherever they come from (a fills file,
/// a stored payload): counts, contracts, prices, canonical times, broker references, and
/// corrected ids in their one spelling, each once. Returns the corrected ids.
pub fn validate_request(fills: &[Fill], corrects: &[String]) -> Result<Vec<Uuid>, Refusal> {
    let invalid = |field: String, rule: String| Refusal::FillInvalid { field, rule };
    if fills.len() > FILLS_MAX {
        return Err(invalid(
            "fills".into(),
            format!("must hold at most {FILLS_MAX} fills, got {}", fills.len()),
        ));
    }
    if fills.is_empty() && corrects.is_empty() {
        return Err(invalid(
            "fills".into(),
            "must hold at least one fill (only a correction may record none, to cancel fills)"
                .into(),
        ));
    }
    for (index, fill) in fills.iter().enumerate() {
        let field = |name: &str| format!("fills[{index}].{name}");
        if fill.contracts == 0 {
            return Err(invalid(
                field("contracts"),
                "must be a whole number > 0, got 0".into(),
            ));
        }
        if !fill.price_usd.is_finite() || fill.price_usd <= 0.0 {
            return Err(invalid(
                field("price_usd"),
                format!("must be a finite number > 0, got {}", fill.price_usd),
            ));
        }
        if parse_timestamp(&fill.at).is_none() {
            return Err(invalid(
                field("at"),
                format!("must be a canonical timestamp, got {:?}", fill.at),
            ));
        }
        let chars = fill.broker_ref.chars().count();
        if chars == 0
            || chars > BROKER_REF_CHARS_MAX
            || fill.broker_ref.chars().any(char::is_control)
        {
            return Err(invalid(
                field("broker_ref"),
                format!("must be 1 to {BROKER_REF_CHARS_MAX} printable characters, got {chars} characters{}",
                    if fill.broker_ref.chars().any(char::is_control) { " with a control character" } else { "" }),
            ));
        }
    }
    if corrects.len() > FILLS_MAX {
        return Err(invalid(
            "corrects".into(),
            format!(
                "must name at most {FILLS_MAX} executions, got {}",
                corrects.len()
            ),
        ));
    }
    let mut ids = Vec::with_capacity(corrects.len());
    for (index, text) in corrects.iter().enumerate() {
        let id = parse_canonical_uuid(text).ok_or_else(|| {
            invalid(
                format!("corrects[{index}]"),
                format!("must be an event id (a lowercase hyphenated UUID), got {text:?}"),
            )
        })?;
        if ids.contains(&id) {
            return Err(invalid(
                format!("corrects[{index}]"),
                format!("names {text} twice"),
            ));
        }
        ids.push(id);
    }
    Ok(ids)
}

/// A fill as the payload records it, from what a fills file gives: the time in canonical form
/// (microseconds; finer digits are dropped, as for every timestamp rollbook records).
pub fn fill_of(contracts: u32, price_usd: f64, at: DateTime<Utc>, broker_ref: String) -> Fill {
    Fill {
        contracts,
        price_usd,
        at: format_timestamp(at),
        broker_ref,
    }
}

/// The bytes a signer signs to record `fills` and `corrects` on `roll` right after `head`,
/// under the signer set in force.
pub fn execute_message(
    governance: &Governance,
    roll: &ExecutableRoll,
    fills: &[Fill],
    corrects: &[Uuid],
    head: &ChainHead,
) -> Vec<u8> {
    execution_message(
        &governance.ledger_id,
        &roll.proposal_id,
        governance.set.version,
        &roll.subject_digest,
        head,
        &digest_of(fills, corrects),
    )
}

fn digest_of(fills: &[Fill], corrects: &[Uuid]) -> [u8; 32] {
    let inputs: Vec<FillInput<'_>> = fills
        .iter()
        .map(|fill| FillInput {
            contracts: fill.contracts,
            price_usd: fill.price_usd,
            at: &fill.at,
            broker_ref: &fill.broker_ref,
        })
        .collect();
    execution_digest(&inputs, corrects)
}

/// What recording `fills` (and `corrects`) on a committed roll amounts to.
#[derive(Debug, Clone)]
pub struct ExecutionRequest {
    pub fills: Vec<Fill>,
    pub corrects: Vec<String>,
}

/// When `execute`: the `roll.executed` event, or why not. Any signer of the set in force
/// records, with one signature that binds the head the event follows (as a veto's does).
pub fn decide_execute(
    governance: &Governance,
    roll: &ExecutableRoll,
    request: ExecutionRequest,
    signature: SignatureEnvelope,
    now: DateTime<Utc>,
    chain: &mut dyn Chain,
) -> Result<Event, Refusal> {
    let strict = VerifiedSignatures::default();
    decide_execute_trusting(governance, roll, request, signature, now, chain, &strict)
}

/// `decide_execute` that does not check again a signature `verified` holds (the auditor's).
pub fn decide_execute_trusting(
    governance: &Governance,
    roll: &ExecutableRoll,
    request: ExecutionRequest,
    signature: SignatureEnvelope,
    now: DateTime<Utc>,
    chain: &mut dyn Chain,
    verified: &VerifiedSignatures,
) -> Result<Event, Refusal> {
    if !roll.status.is_committed() {
        return Err(Refusal::NotExecutable {
            proposal_id: roll.proposal_id,
            what: roll.status.to_string(),
        });
    }
    if now > roll.recording_deadline() {
        return Err(Refusal::ExecutionRecordingClosed {
            proposal_id: roll.proposal_id,
            deadline: format_timestamp(roll.recording_deadline()),
            grace_days: EXECUTION_RECORDING_GRACE_DAYS,
        });
    }
    let member =
        governance
            .set
            .by_key_id(&signature.key_id)
            .ok_or_else(|| Refusal::NotASigner {
                key_id: signature.key_id.clone(),
                set_version: governance.set.version,
                names: governance.set.names(),
                action: "record an execution",
            })?;
    member.check_valid_at(now, "recorded execution")?;
    let ExecutionRequest { fills, corrects } = request;
    let corrected = validate_request(&fills, &corrects)?;
    check_fills_happened(governance, &fills, now)?;
    for (text, id) in corrects.iter().zip(&corrected) {
        match roll.executions.iter().find(|record| record.event_id == *id) {
            None => {
                return Err(Refusal::CorrectionTarget {
                    event_id: text.clone(),
                    reason: format!(
                        "no earlier execution of proposal {} has this event id",
                        roll.proposal_id
                    ),
                })
            }
            Some(record) if record.corrected => {
                return Err(Refusal::CorrectionTarget {
                    event_id: text.clone(),
                    reason: "that execution was corrected already; correct the correction".into(),
                })
            }
            Some(_) => {}
        }
    }
    check_execute_signature(
        governance,
        roll,
        &fills,
        &corrected,
        &signature,
        &member.key,
        chain,
        verified,
    )?;
    let (filled_contracts, breaches) = judge(roll, &fills, &corrected);
    let status = if roll.status == Status::ExecutionBreach || !breaches.is_empty() {
        Status::ExecutionBreach
    } else if filled_contracts == u64::from(roll.approved.contracts) {
        Status::Executed
    } else {
        Status::Committed
    };
    Ok(Event::RollExecuted(RollExecuted {
        proposal_id: roll.proposal_id.to_string(),
        fills,
        corrects,
        filled_contracts,
        status: status.as_str().to_string(),
        breaches,
        signature,
    }))
}

/// A fill is recorded after it happened: none lies later than the recording's time plus the
/// policy's `timing.clock_skew_max_seconds` (the clocks of a desk and the ledger differ by that
/// much at most).
fn check_fills_happened(
    governance: &Governance,
    fills: &[Fill],
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    let skew_seconds = governance.policy.timing.clock_skew_max_seconds;
    let latest = now + Duration::seconds(i64::from(skew_seconds));
    match fills
        .iter()
        .position(|fill| parse_timestamp(&fill.at).is_some_and(|at| at > latest))
    {
        None => Ok(()),
        Some(index) => Err(Refusal::FillInvalid {
            field: format!("fills[{index}].at"),
            rule: format!(
                "is {}, later than the time it is recorded ({}) plus timing.clock_skew_max_seconds ({skew_seconds} s): a fill is recorded after it happened",
                fills[index].at,
                format_timestamp(now)
            ),
        }),
    }
}

/// The signature binds this ledger, roll, the set in force, the roll's subject digest, these
/// fills and corrections, and exactly the head the event follows.
#[allow(clippy::too_many_arguments)]
fn check_execute_signature(
    governance: &Governance,
    roll: &ExecutableRoll,
    fills: &[Fill],
    corrected: &[Uuid],
    signature: &SignatureEnvelope,
    key: &crate::crypto::keys::PublicKey,
    chain: &mut dyn Chain,
    verified: &VerifiedSignatures,
) -> Result<(), Refusal> {
    let message = verify_envelope(signature, key, verified)?;
    let decoded = decode_execution_message(&message)
        .map_err(|reason| Refusal::MessageMalformed { reason })?;
    let mismatch = if decoded.ledger_id != governance.ledger_id {
        Some(Mismatch::Ledger {
            found: decoded.ledger_id,
            expected: governance.ledger_id,
        })
    } else if decoded.proposal_id != roll.proposal_id {
        Some(Mismatch::Proposal {
            found: decoded.proposal_id,
            expected: roll.proposal_id,
        })
    } else if decoded.signer_set_version != governance.set.version {
        Some(Mismatch::SignerSetVersion {
            found: decoded.signer_set_version,
            expected: governance.set.version,
        })
    } else if decoded.subject_digest != roll.subject_digest {
        Some(Mismatch::SubjectDigest)
    } else if decoded.execution_digest != digest_of(fills, corrected) {
        Some(Mismatch::ExecutionContent)
    } else {
        // Online only: exactly the head the event follows.
        let head = chain.head().seq;
        check_bound_head(chain, &decoded.head, head).err()
    };
    match mismatch {
        Some(mismatch) => Err(Refusal::Misbound {
            key_id: signature.key_id.clone(),
            mismatch,
        }),
        None => Ok(()),
    }
}

/// The contracts filled once these fills count and the corrected executions no longer do, and
/// what breaks the approved bounds: the total above the approved size, a fill outside the
/// window (both ends included), a price further from the approved premium than the policy's
/// `quote_deviation_max` (relative: |price - premium| / premium).
fn judge(roll: &ExecutableRoll, fills: &[Fill], corrected: &[Uuid]) -> (u64, Vec<String>) {
    let approved = &roll.approved;
    let still_counted: u64 = roll
        .executions
        .iter()
        .filter(|record| !record.corrected && !corrected.contains(&record.event_id))
        .map(|record| record.contracts)
        .sum();
    let filled = still_counted + contracts_of(fills);
    let mut breaches = Vec::new();
    if filled > u64::from(approved.contracts) {
        breaches.push(format!(
            "{filled} contracts filled in all, more than the approved {}",
            approved.contracts
        ));
    }
    for (index, fill) in fills.iter().enumerate() {
        let at = parse_timestamp(&fill.at).expect("validated");
        if at < approved.execute_after || at > approved.execute_before {
            breaches.push(format!(
                "fills[{index}] at {} lies outside the approved window {} to {}",
                fill.at,
                format_timestamp(approved.execute_after),
                format_timestamp(approved.execute_before)
            ));
        }
        let deviation = (fill.price_usd - approved.premium_usd).abs() / approved.premium_usd;
        if deviation > approved.quote_deviation_max {
            breaches.push(format!(
                "fills[{index}] price {} USD deviates {:.4} from the approved premium {} USD (structure.quote_deviation_max {})",
                fill.price_usd, deviation, approved.premium_usd, approved.quote_deviation_max
            ));
        }
    }
    (filled, breaches)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A verifier holds one per committed roll for 30 days past its window (A13): a field
    /// added here is paid for every such roll (docs/audit-format.md, Memory).
    #[test]
    fn a_committed_roll_stays_compact() {
        assert!(std::mem::size_of::<ExecutableRoll>() <= 112);
    }

    fn fill(contracts: u32, price_usd: f64) -> Fill {
        Fill {
            contracts,
            price_usd,
            at: "2026-05-08T15:00:00.000000Z".into(),
            broker_ref: "IB-1".into(),
        }
    }

    #[test]
    fn requests_are_refused_naming_the_field() {
        let refused = |fills: &[Fill], corrects: &[&str]| {
            let corrects: Vec<String> = corrects.iter().map(|c| c.to_string()).collect();
            match validate_request(fills, &corrects) {
                Err(Refusal::FillInvalid { field, .. }) => field,
                other => panic!("expected a refusal, got {other:?}"),
            }
        };
        assert_eq!(refused(&[], &[]), "fills");
        assert_eq!(refused(&[fill(0, 3.0)], &[]), "fills[0].contracts");
        assert_eq!(
            refused(&[fill(1, 3.0), fill(1, f64::NAN)], &[]),
            "fills[1].price_usd"
        );
        assert_eq!(refused(&[fill(1, -1.0)], &[]), "fills[0].price_usd");
        let mut late = fill(1, 3.0);
        late.at = "2026-05-08T15:00:00Z".into();
        assert_eq!(refused(&[late], &[]), "fills[0].at");
        let mut long = fill(1, 3.0);
        long.broker_ref = "x".repeat(BROKER_REF_CHARS_MAX + 1);
        assert_eq!(refused(&[long], &[]), "fills[0].broker_ref");
        let mut escape = fill(1, 3.0);
        escape.broker_ref = "IB\u{1b}[2J".into();
        assert_eq!(refused(&[escape], &[]), "fills[0].broker_ref");
        assert_eq!(refused(&[fill(1, 3.0)], &["not-an-id"]), "corrects[0]");
        let id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        assert_eq!(refused(&[], &[id, id]), "corrects[1]");
        assert_eq!(validate_request(&[], &[id.to_string()]).unwrap().len(), 1);
        let many: Vec<Fill> = (0..=FILLS_MAX).map(|_| fill(1, 3.0)).collect();
        assert_eq!(refused(&many, &[]), "fills");
    }
}
