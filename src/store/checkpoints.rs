//! Signed checkpoints as rows: decoding what `queries.rs` reads from the `checkpoints` and
//! `checkpoint_signatures` tables (migrations 0005). No SQL here and no judgement of the notes:
//! a row is handed on as stored; the caller parses and verifies the note (`tlog`), because a
//! row is only as good as its signatures.

use super::shared::{hash32, ReadRow};
use super::{AddedSignature, StoreError, StoredCheckpoint};

/// A size as the database stores it (a signed 64-bit integer).
pub(super) fn size_i64(size: u64) -> Result<i64, StoreError> {
    i64::try_from(size)
        .map_err(|_| StoreError::InvalidAppend(format!("tree size {size} is out of range")))
}

/// Checkpoint rows, smallest size first, each with the signature rows of its size (`signatures`
/// ordered by size, then by the time they were added).
pub(super) fn checkpoints_of<R: ReadRow>(
    rows: &[R],
    signatures: &[R],
) -> Result<Vec<StoredCheckpoint>, StoreError> {
    let mut checkpoints = rows
        .iter()
        .map(checkpoint_of)
        .collect::<Result<Vec<_>, _>>()?;
    let mut next = 0;
    for row in signatures {
        let (size, added) = signature_of(row)?;
        // Both lists are in size order: walk them together.
        while checkpoints
            .get(next)
            .is_some_and(|checkpoint| checkpoint.tree_size < size)
        {
            next += 1;
        }
        match checkpoints.get_mut(next) {
            Some(checkpoint) if checkpoint.tree_size == size => checkpoint.added.push(added),
            // The foreign key makes this impossible unless the database was altered.
            _ => {
                return Err(StoreError::CorruptRow {
                    seq: size as i64,
                    reason: "a checkpoint signature without its checkpoint".into(),
                })
            }
        }
    }
    Ok(checkpoints)
}

fn corrupt(size: i64, what: &str, error: sqlx::Error) -> StoreError {
    StoreError::CorruptRow {
        seq: size,
        reason: format!("checkpoint {what}: {error}"),
    }
}

fn checkpoint_of(row: &impl ReadRow) -> Result<StoredCheckpoint, StoreError> {
    let size = row
        .int64("tree_size")
        .map_err(super::db_err("reading a checkpoint row"))?;
    if size < 1 {
        return Err(StoreError::CorruptRow {
            seq: size,
            reason: "a checkpoint of tree size below 1".into(),
        });
    }
    let root = row.bytes("root").map_err(|e| corrupt(size, "root", e))?;
    Ok(StoredCheckpoint {
        tree_size: size as u64,
        root: hash32(size, "checkpoint root", root)?,
        note: row.text("note").map_err(|e| corrupt(size, "note", e))?,
        recorded_at: row
            .text("recorded_at")
            .map_err(|e| corrupt(size, "recorded_at", e))?,
        added: Vec::new(),
    })
}

fn signature_of(row: &impl ReadRow) -> Result<(u64, AddedSignature), StoreError> {
    let size = row
        .int64("tree_size")
        .map_err(super::db_err("reading a checkpoint signature row"))?;
    Ok((
        size.max(0) as u64,
        AddedSignature {
            line: row.text("line").map_err(|e| corrupt(size, "line", e))?,
            source: row
                .optional_text("source")
                .map_err(|e| corrupt(size, "source", e))?,
            recorded_at: row
                .text("recorded_at")
                .map_err(|e| corrupt(size, "recorded_at", e))?,
        },
    ))
}
