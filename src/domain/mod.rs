//! The pure domain: event envelope and hash chain, event payloads, projections, signer-set
//! governance, proposals and the approval state machine, and the refusals its rules give.
//! Nothing here does IO or reads the clock.
pub mod approval;
pub mod chain;
pub mod clock;
pub mod envelope;
pub mod events;
pub mod execution;
pub mod fills_file;
pub mod governance;
pub mod layers;
pub mod projection;
pub mod proposal;
pub mod refusal;
