//! RFC 9162 (Certificate Transparency 2.0) Merkle tree over SHA-256.
//!
//! Leaf hash `SHA-256(0x00 || data)`, node hash `SHA-256(0x01 || left || right)`, empty tree
//! `SHA-256("")`. The 0x00/0x01 prefixes keep a leaf from ever being passed off as an inner node.
//! In rollbook each event hash is one leaf's *data*: leaf = `SHA-256(0x00 || event_hash)`.
//!
//! Proof generation and verification follow RFC 9162 sections 2.1.3 and 2.1.4 step by step, with
//! the proof length checked up front so that a malformed proof is refused before any hashing.
//! Tree sizes and leaf indexes are `u64` counts of leaves; nothing here panics on hostile sizes.
//! A proof binds a leaf (or an old root) to a root, not to a size: callers must take the size from
//! the same signed statement as the root (see the note on `verify_inclusion`).

use sha2::{Digest, Sha256};
use thiserror::Error;

/// A SHA-256 value: a leaf hash, a node hash or a root.
pub type Hash = [u8; 32];

const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

/// Why a proof was refused or could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MerkleError {
    #[error("leaf index {index} is outside a tree of {size} leaves")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("old tree size {old_size} is larger than new tree size {new_size}; a log only grows")]
    OldSizeLarger { old_size: u64, new_size: u64 },
    #[error("tree size {size} exceeds the {leaves_available} leaf hashes given")]
    SizeExceedsLeaves { size: u64, leaves_available: usize },
    #[error("proof has {got} hashes; this proof needs exactly {expected}")]
    WrongProofLength { got: usize, expected: usize },
    /// Unreachable after the length check for a correct implementation; kept as the RFC's own
    /// checks (steps 4/5 and 6/7) so that a length-formula mistake can never turn into acceptance.
    #[error("proof does not fit a tree of {size} leaves")]
    ShapeMismatch { size: u64 },
    #[error("inclusion proof does not lead to the expected root: the leaf is not at this index of this tree")]
    RootMismatch,
    #[error("consistency proof does not reproduce the old root")]
    OldRootMismatch,
    #[error("consistency proof does not reproduce the new root: the new tree does not extend the old one")]
    NewRootMismatch,
}

/// `SHA-256(0x00 || leaf_data)`.
pub fn leaf_hash(leaf_data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(leaf_data);
    hasher.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([NODE_PREFIX]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// Root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Root over leaf *data* (each item is hashed with `leaf_hash` first).
pub fn root_from_leaf_data<D: AsRef<[u8]>>(leaves_data: &[D]) -> Hash {
    let mut builder = MerkleBuilder::new();
    for leaf_data in leaves_data {
        builder.push_leaf_data(leaf_data.as_ref());
    }
    builder.root()
}

/// Root over leaf hashes that were already computed with `leaf_hash`.
pub fn root_from_leaf_hashes(leaf_hashes: &[Hash]) -> Hash {
    let mut builder = MerkleBuilder::new();
    for hash in leaf_hashes {
        builder.push_leaf_hash(*hash);
    }
    builder.root()
}

/// Streaming root computation in O(log n) memory.
///
/// Keeps the roots of the perfect subtrees that the leaves so far decompose into, one for each
/// set bit of `leaf_count` (largest, leftmost first), so at most 64 hashes for any `u64` count.
/// `root()` folds them right to left, which is exactly RFC 9162's MTH split at the largest power
/// of two below n.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct MerkleBuilder {
    subtree_roots: Vec<Hash>,
    leaf_count: u64,
}

impl MerkleBuilder {
    pub fn new() -> Self {
        MerkleBuilder {
            subtree_roots: Vec::with_capacity(64),
            leaf_count: 0,
        }
    }

    /// Adds one leaf given its data; the builder hashes it as `SHA-256(0x00 || data)`.
    pub fn push_leaf_data(&mut self, leaf_data: &[u8]) {
        self.push_leaf_hash(leaf_hash(leaf_data));
    }

    /// Adds one leaf given its leaf hash (already `SHA-256(0x00 || data)`).
    pub fn push_leaf_hash(&mut self, leaf_hash: Hash) {
        let mut node = leaf_hash;
        // Each trailing 1 bit of the old count is a perfect subtree of the same height as `node`
        // that now has its right sibling: merge them, like a binary counter carrying.
        let mut carry_bits = self.leaf_count;
        while carry_bits & 1 == 1 {
            let left = self
                .subtree_roots
                .pop()
                .expect("one subtree root per set bit of leaf_count");
            node = node_hash(&left, &node);
            carry_bits >>= 1;
        }
        self.subtree_roots.push(node);
        self.leaf_count = self
            .leaf_count
            .checked_add(1)
            .expect("more than 2^64 leaves cannot be pushed");
        debug_assert_eq!(
            self.subtree_roots.len(),
            self.leaf_count.count_ones() as usize
        );
    }

    /// Number of leaves pushed so far.
    pub fn leaf_count(&self) -> u64 {
        self.leaf_count
    }

    /// Root of the tree of all leaves pushed so far; pushing may continue afterwards.
    pub fn root(&self) -> Hash {
        let mut roots_right_to_left = self.subtree_roots.iter().rev();
        let Some(rightmost) = roots_right_to_left.next() else {
            return empty_root();
        };
        roots_right_to_left.fold(*rightmost, |right, left| node_hash(left, &right))
    }
}

/// RFC 9162 2.1.3.1 `PATH(index, D[0:size])`: the audit path of leaf `index` in the tree made of
/// the first `size` leaf hashes, nearest the leaf first.
///
/// Takes O(size) hashing: built for proofs over an in-memory slice of leaf hashes.
pub fn inclusion_proof(
    leaf_hashes: &[Hash],
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, MerkleError> {
    let leaves = prefix(leaf_hashes, size)?;
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let index = usize::try_from(index).expect("index < size <= leaf_hashes.len()");
    let mut proof = Vec::with_capacity(inclusion_proof_len(index as u64, size));
    push_path(index, leaves, &mut proof);
    debug_assert_eq!(proof.len(), inclusion_proof_len(index as u64, size));
    Ok(proof)
}

/// RFC 9162 2.1.4.1 `PROOF(old_size, D[0:new_size])`.
///
/// `old_size == 0` and `old_size == new_size` give an empty proof: the empty tree is a prefix of
/// every tree, and a tree is a prefix of itself (`SUBPROOF(m, D[m], true) = {}`).
pub fn consistency_proof(
    leaf_hashes: &[Hash],
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::OldSizeLarger { old_size, new_size });
    }
    let leaves = prefix(leaf_hashes, new_size)?;
    let mut proof = Vec::new();
    if old_size == 0 || old_size == new_size {
        return Ok(proof);
    }
    let old_size = usize::try_from(old_size).expect("old_size <= new_size <= leaf_hashes.len()");
    push_subproof(old_size, leaves, true, &mut proof);
    debug_assert_eq!(
        proof.len(),
        consistency_proof_len(old_size as u64, new_size)
    );
    Ok(proof)
}

/// RFC 9162 2.1.3.2: checks that `leaf_hash` is leaf `index` of the tree of `size` leaves whose
/// root is `root`.
///
/// As in RFC 9162, the proof does not commit to `size` itself: a proof for one size can also
/// check out against the same root under another size with the same path shape. Take `size` and
/// `root` from the same signed tree head, never from the party that supplies the proof.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    // Step 1.
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(MerkleError::WrongProofLength {
            got: proof.len(),
            expected,
        });
    }
    // Steps 2 and 3 (`fn` is a keyword, hence the longer names).
    let mut index_bits = index;
    let mut last_bits = size - 1;
    let mut running = *leaf_hash;
    // Step 4.
    for sibling in proof {
        if last_bits == 0 {
            return Err(MerkleError::ShapeMismatch { size });
        }
        if index_bits & 1 == 1 || index_bits == last_bits {
            running = node_hash(sibling, &running);
            while index_bits & 1 == 0 && index_bits != 0 {
                index_bits >>= 1;
                last_bits >>= 1;
            }
        } else {
            running = node_hash(&running, sibling);
        }
        index_bits >>= 1;
        last_bits >>= 1;
    }
    // Step 5.
    if last_bits != 0 {
        return Err(MerkleError::ShapeMismatch { size });
    }
    if running != *root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// RFC 9162 2.1.4.2: checks that the tree of `old_size` leaves with root `old_root` is a prefix
/// of the tree of `new_size` leaves with root `new_root`.
///
/// Edge cases, outside the RFC's `0 < old_size < new_size` domain: equal sizes need an empty
/// proof and equal roots; `old_size == 0` needs an empty proof and `old_root` equal to the empty
/// tree root (stricter than "anything goes", so a wrong old root is never silently accepted).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::OldSizeLarger { old_size, new_size });
    }
    if old_size == new_size || old_size == 0 {
        if !proof.is_empty() {
            return Err(MerkleError::WrongProofLength {
                got: proof.len(),
                expected: 0,
            });
        }
        if old_size == 0 {
            return match *old_root == empty_root() {
                true => Ok(()),
                false => Err(MerkleError::OldRootMismatch),
            };
        }
        return match old_root == new_root {
            true => Ok(()),
            false => Err(MerkleError::NewRootMismatch),
        };
    }
    let expected = consistency_proof_len(old_size, new_size);
    // Step 1 (an empty path fails) is covered: `expected` is at least 1 here.
    if proof.len() != expected {
        return Err(MerkleError::WrongProofLength {
            got: proof.len(),
            expected,
        });
    }
    // Step 2: a power-of-two old tree is a complete subtree of the new one, so its root starts
    // the path instead of being sent.
    let seed = old_size.is_power_of_two().then_some(old_root);
    let mut path = seed.into_iter().chain(proof.iter());
    // Step 3.
    let mut old_bits = old_size - 1;
    let mut new_bits = new_size - 1;
    // Step 4.
    while old_bits & 1 == 1 {
        old_bits >>= 1;
        new_bits >>= 1;
    }
    // Step 5.
    let first = path.next().expect("path is not empty: expected >= 1");
    let mut old_running = *first;
    let mut new_running = *first;
    // Step 6.
    for sibling in path {
        if new_bits == 0 {
            return Err(MerkleError::ShapeMismatch { size: new_size });
        }
        if old_bits & 1 == 1 || old_bits == new_bits {
            old_running = node_hash(sibling, &old_running);
            new_running = node_hash(sibling, &new_running);
            while old_bits & 1 == 0 && old_bits != 0 {
                old_bits >>= 1;
                new_bits >>= 1;
            }
        } else {
            new_running = node_hash(&new_running, sibling);
        }
        old_bits >>= 1;
        new_bits >>= 1;
    }
    // Step 7.
    if new_bits != 0 {
        return Err(MerkleError::ShapeMismatch { size: new_size });
    }
    if old_running != *old_root {
        return Err(MerkleError::OldRootMismatch);
    }
    if new_running != *new_root {
        return Err(MerkleError::NewRootMismatch);
    }
    Ok(())
}

/// Length of `PATH(index, D[size])` for `index < size`: the levels where the paths to `index` and
/// to the last leaf differ (`inner`), plus one per left sibling above them (`border`).
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    debug_assert!(index < size);
    let inner = u64::BITS - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// Length of `PROOF(old_size, D[new_size])` for `0 < old_size < new_size`: the inclusion path of
/// the old tree's last leaf, minus the levels inside the old tree's rightmost complete subtree,
/// plus that subtree's root unless the old tree is itself complete (then the verifier has it).
fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    debug_assert!(0 < old_size && old_size < new_size);
    let inner = u64::BITS - ((old_size - 1) ^ (new_size - 1)).leading_zeros();
    let border = (old_size - 1).checked_shr(inner).unwrap_or(0).count_ones();
    let shift = old_size.trailing_zeros();
    let seed_count = u32::from(!old_size.is_power_of_two());
    (seed_count + inner.saturating_sub(shift) + border) as usize
}

fn prefix(leaf_hashes: &[Hash], size: u64) -> Result<&[Hash], MerkleError> {
    usize::try_from(size)
        .ok()
        .and_then(|size| leaf_hashes.get(..size))
        .ok_or(MerkleError::SizeExceedsLeaves {
            size,
            leaves_available: leaf_hashes.len(),
        })
}

/// Largest power of two strictly below `count` (`count >= 2`): RFC 9162's split point `k`.
fn split_point(count: usize) -> usize {
    debug_assert!(count >= 2);
    1 << (usize::BITS - 1 - (count - 1).leading_zeros())
}

fn push_path(index: usize, leaves: &[Hash], proof: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let split = split_point(leaves.len());
    if index < split {
        push_path(index, &leaves[..split], proof);
        proof.push(root_from_leaf_hashes(&leaves[split..]));
    } else {
        push_path(index - split, &leaves[split..], proof);
        proof.push(root_from_leaf_hashes(&leaves[..split]));
    }
}

/// RFC 9162 `SUBPROOF(old_size, leaves, old_is_complete_subtree)`.
fn push_subproof(old_size: usize, leaves: &[Hash], complete: bool, proof: &mut Vec<Hash>) {
    if old_size == leaves.len() {
        if !complete {
            proof.push(root_from_leaf_hashes(leaves));
        }
        return;
    }
    let split = split_point(leaves.len());
    if old_size <= split {
        push_subproof(old_size, &leaves[..split], complete, proof);
        proof.push(root_from_leaf_hashes(&leaves[split..]));
    } else {
        push_subproof(old_size - split, &leaves[split..], false, proof);
        proof.push(root_from_leaf_hashes(&leaves[..split]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_point_is_largest_power_of_two_below() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(8), 4);
        assert_eq!(split_point(9), 8);
    }

    #[test]
    fn proof_lengths_never_panic_at_the_edges() {
        assert_eq!(inclusion_proof_len(0, 1), 0);
        assert_eq!(inclusion_proof_len(0, u64::MAX), 64);
        assert_eq!(inclusion_proof_len(u64::MAX - 1, u64::MAX), 63);
        assert!(consistency_proof_len(1, u64::MAX) <= 65);
        assert!(consistency_proof_len(u64::MAX - 1, u64::MAX) <= 65);
    }

    #[test]
    fn builder_keeps_one_root_per_set_bit() {
        let mut builder = MerkleBuilder::new();
        for count in 1..=1000u64 {
            builder.push_leaf_data(&count.to_be_bytes());
            assert_eq!(builder.subtree_roots.len(), count.count_ones() as usize);
        }
    }
}
