//! The pure domain: event envelope and hash chain, event payloads, projections and (with the
//! approval issue) the approval state machine. Nothing here does IO or reads the clock.
pub mod approval;
pub mod envelope;
pub mod events;
pub mod governance;
pub mod projection;
pub mod refusal;
