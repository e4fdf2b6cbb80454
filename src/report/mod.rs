//! What reviewers read: the spreadsheet CSV (`spreadsheet`) and the HTML report of an export
//! (`page`, with charts from `svg`). Both write `rows::ProposalRow`s, built from proposal
//! states folded from verified events (`facts`); `gather` reads an export for the report. No
//! IO of its own beyond the readers and writers it is handed; the CLI opens and writes files.

pub mod facts;
pub mod gather;
mod html;
pub mod page;
pub mod rows;
pub mod spreadsheet;
mod svg;

pub use html::escape;
