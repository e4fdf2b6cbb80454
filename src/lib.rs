//! rollbook: an append-only, hash-chained, multi-signature ledger for rolling hedge profits.
//!
//! The pure core (`domain`, `crypto::canonical`) knows nothing of SQL or the terminal; `store`
//! is the only module that speaks SQL and `cli` the only one that prints. See ARCHITECTURE.md.
pub mod audit;
pub mod checkpoint;
pub mod cli;
pub mod crypto;
pub mod domain;
pub mod pin;
pub mod report;
pub mod service;
pub mod sizing;
pub mod store;
pub mod tlog;
pub mod tlog_http;
pub mod witness_service;
