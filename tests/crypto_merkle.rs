//! RFC 9162 Merkle tree: published vectors, exhaustive small trees, and hostile proofs.

use proptest::prelude::*;
use rollbook::crypto::merkle::{
    consistency_proof, empty_root, inclusion_proof, leaf_hash, node_hash, root_from_leaf_data,
    root_from_leaf_hashes, verify_consistency, verify_inclusion, Hash, MerkleBuilder, MerkleError,
};
use rollbook::crypto::{from_hex, from_hex32};

/// Kept relative to the crate root so the path also holds once this file lives in /work/main.
const VECTORS_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/merkle-rfc9162.json"
);

/// Largest tree size covered exhaustively.
const EXHAUSTIVE_SIZE_MAX: u64 = 64;

struct Vectors {
    leaves_data: Vec<Vec<u8>>,
    roots: Vec<Hash>,
    inclusion: Vec<(u64, u64, Vec<Hash>)>,
    consistency: Vec<(u64, u64, Vec<Hash>)>,
}

fn load_vectors() -> Vectors {
    let text = std::fs::read_to_string(VECTORS_PATH)
        .unwrap_or_else(|error| panic!("reading {VECTORS_PATH}: {error}"));
    let json: serde_json::Value = serde_json::from_str(&text).expect("vectors are JSON");
    let hashes = |value: &serde_json::Value| -> Vec<Hash> {
        value
            .as_array()
            .expect("proof is an array")
            .iter()
            .map(|hash| from_hex32(hash.as_str().expect("hash is a string")).expect("hash is hex"))
            .collect()
    };
    let number = |value: &serde_json::Value| value.as_u64().expect("size is a number");
    let leaves_data = json["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|leaf| from_hex(leaf.as_str().unwrap()).unwrap())
        .collect::<Vec<_>>();
    let roots_object = json["roots"].as_object().unwrap();
    let roots = (0..roots_object.len())
        .map(|size| from_hex32(roots_object[&size.to_string()].as_str().unwrap()).unwrap())
        .collect();
    let inclusion = json["inclusion"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            (
                number(&case["leaf_index"]),
                number(&case["tree_size"]),
                hashes(&case["proof"]),
            )
        })
        .collect();
    let consistency = json["consistency"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            (
                number(&case["size1"]),
                number(&case["size2"]),
                hashes(&case["proof"]),
            )
        })
        .collect();
    Vectors {
        leaves_data,
        roots,
        inclusion,
        consistency,
    }
}

/// MTH straight from RFC 9162 section 2.1.1, recursive, as an independent reference.
fn reference_root(leaf_hashes: &[Hash]) -> Hash {
    match leaf_hashes.len() {
        0 => empty_root(),
        1 => leaf_hashes[0],
        count => {
            let mut split = 1;
            while split * 2 < count {
                split *= 2;
            }
            node_hash(
                &reference_root(&leaf_hashes[..split]),
                &reference_root(&leaf_hashes[split..]),
            )
        }
    }
}

/// Distinct leaves, so that no two subtrees share a hash.
fn test_leaf_hashes(count: u64) -> Vec<Hash> {
    (0..count)
        .map(|index| leaf_hash(format!("event {index}").as_bytes()))
        .collect()
}

/// Every copy of `value` with one byte changed (each of the 32 positions, xor 0x01).
fn one_byte_changes(value: &Hash) -> impl Iterator<Item = Hash> + '_ {
    (0..32).map(move |position| {
        let mut changed = *value;
        changed[position] ^= 0x01;
        changed
    })
}

/// Every copy of `proof` with one byte of one element changed.
fn proof_one_byte_changes(proof: &[Hash]) -> impl Iterator<Item = Vec<Hash>> + '_ {
    (0..proof.len()).flat_map(move |element| {
        one_byte_changes(&proof[element]).map(move |changed| {
            let mut changed_proof = proof.to_vec();
            changed_proof[element] = changed;
            changed_proof
        })
    })
}

/// The left/right pattern RFC 9162 2.1.3.2 step 4 walks for `(index, size)` with a proof of
/// `proof_len` hashes, or None where the walk fails on its own (too short or too long).
/// Two (index, size) pairs with the same pattern accept the same proof under the same root.
fn path_shape(index: u64, size: u64, proof_len: usize) -> Option<Vec<bool>> {
    if index >= size {
        return None;
    }
    let (mut index_bits, mut last_bits) = (index, size - 1);
    let mut sibling_on_left = Vec::with_capacity(proof_len);
    for _ in 0..proof_len {
        if last_bits == 0 {
            return None;
        }
        if index_bits & 1 == 1 || index_bits == last_bits {
            sibling_on_left.push(true);
            while index_bits & 1 == 0 && index_bits != 0 {
                index_bits >>= 1;
                last_bits >>= 1;
            }
        } else {
            sibling_on_left.push(false);
        }
        index_bits >>= 1;
        last_bits >>= 1;
    }
    (last_bits == 0).then_some(sibling_on_left)
}

#[test]
fn vector_roots_match_for_every_size() {
    let vectors = load_vectors();
    assert_eq!(vectors.roots.len(), 9, "roots for sizes 0..=8");
    assert_eq!(vectors.roots[0], empty_root());
    for (size, expected) in vectors.roots.iter().enumerate() {
        assert_eq!(
            &root_from_leaf_data(&vectors.leaves_data[..size]),
            expected,
            "size {size}"
        );
        let leaf_hashes: Vec<Hash> = vectors.leaves_data[..size]
            .iter()
            .map(|data| leaf_hash(data))
            .collect();
        assert_eq!(
            &reference_root(&leaf_hashes),
            expected,
            "reference, size {size}"
        );
    }
}

#[test]
fn vector_inclusion_proofs_are_reproduced_and_verify() {
    let vectors = load_vectors();
    let leaf_hashes: Vec<Hash> = vectors
        .leaves_data
        .iter()
        .map(|data| leaf_hash(data))
        .collect();
    assert!(!vectors.inclusion.is_empty());
    for (index, size, expected_proof) in &vectors.inclusion {
        let (index, size) = (*index, *size);
        let root = vectors.roots[size as usize];
        let leaf = leaf_hashes[index as usize];
        let proof = inclusion_proof(&leaf_hashes, index, size).unwrap();
        assert_eq!(&proof, expected_proof, "proof for leaf {index} of {size}");
        verify_inclusion(index, size, &leaf, expected_proof, &root)
            .unwrap_or_else(|error| panic!("leaf {index} of {size}: {error}"));
        for changed in proof_one_byte_changes(expected_proof) {
            assert!(verify_inclusion(index, size, &leaf, &changed, &root).is_err());
        }
        for changed_root in one_byte_changes(&root) {
            assert_eq!(
                verify_inclusion(index, size, &leaf, expected_proof, &changed_root),
                Err(MerkleError::RootMismatch)
            );
        }
    }
}

#[test]
fn vector_consistency_proofs_are_reproduced_and_verify() {
    let vectors = load_vectors();
    let leaf_hashes: Vec<Hash> = vectors
        .leaves_data
        .iter()
        .map(|data| leaf_hash(data))
        .collect();
    assert!(!vectors.consistency.is_empty());
    for (old_size, new_size, expected_proof) in &vectors.consistency {
        let (old_size, new_size) = (*old_size, *new_size);
        let old_root = vectors.roots[old_size as usize];
        let new_root = vectors.roots[new_size as usize];
        let proof = consistency_proof(&leaf_hashes, old_size, new_size).unwrap();
        assert_eq!(&proof, expected_proof, "proof {old_size} -> {new_size}");
        verify_consistency(old_size, new_size, &old_root, &new_root, expected_proof)
            .unwrap_or_else(|error| panic!("{old_size} -> {new_size}: {error}"));
        for changed in proof_one_byte_changes(expected_proof) {
            assert!(
                verify_consistency(old_size, new_size, &old_root, &new_root, &changed).is_err()
            );
        }
        for changed_root in one_byte_changes(&old_root) {
            assert!(verify_consistency(
                old_size,
                new_size,
                &changed_root,
                &new_root,
                expected_proof
            )
            .is_err());
        }
        for changed_root in one_byte_changes(&new_root) {
            assert!(verify_consistency(
                old_size,
                new_size,
                &old_root,
                &changed_root,
                expected_proof
            )
            .is_err());
        }
    }
}

#[test]
fn exhaustive_inclusion_proofs_up_to_64_leaves() {
    let leaf_hashes = test_leaf_hashes(EXHAUSTIVE_SIZE_MAX + 1);
    assert!(inclusion_proof(&leaf_hashes, 0, 0).is_err());
    assert_eq!(
        verify_inclusion(0, 0, &leaf_hashes[0], &[], &empty_root()),
        Err(MerkleError::IndexOutOfRange { index: 0, size: 0 })
    );
    let mut wrong_sizes_accepted = 0u32;
    let mut wrong_sizes_refused = 0u32;
    for size in 1..=EXHAUSTIVE_SIZE_MAX {
        let root = reference_root(&leaf_hashes[..size as usize]);
        for index in 0..size {
            let leaf = leaf_hashes[index as usize];
            let proof = inclusion_proof(&leaf_hashes, index, size).unwrap();
            verify_inclusion(index, size, &leaf, &proof, &root)
                .unwrap_or_else(|error| panic!("leaf {index} of {size}: {error}"));

            for changed in proof_one_byte_changes(&proof) {
                assert!(verify_inclusion(index, size, &leaf, &changed, &root).is_err());
            }
            for changed_leaf in one_byte_changes(&leaf) {
                assert!(verify_inclusion(index, size, &changed_leaf, &proof, &root).is_err());
            }
            for changed_root in one_byte_changes(&root) {
                assert!(verify_inclusion(index, size, &leaf, &proof, &changed_root).is_err());
            }
            // One hash too many or too few.
            let mut longer = proof.clone();
            longer.push(leaf);
            assert!(verify_inclusion(index, size, &leaf, &longer, &root).is_err());
            if !proof.is_empty() {
                assert!(verify_inclusion(index, size, &leaf, &proof[1..], &root).is_err());
            }
            // Every other index of the same tree: a different path, always refused.
            for wrong_index in (0..size).filter(|&other| other != index) {
                assert!(
                    verify_inclusion(wrong_index, size, &leaf, &proof, &root).is_err(),
                    "leaf {index} of {size} accepted as leaf {wrong_index}"
                );
            }
            assert!(verify_inclusion(size, size, &leaf, &proof, &root).is_err());
            // Other sizes: refused unless the path has exactly the same shape, in which case the
            // RFC algorithm cannot tell them apart (size is bound by the signed tree head).
            let shape = path_shape(index, size, proof.len());
            assert!(shape.is_some());
            for wrong_size in (1..=EXHAUSTIVE_SIZE_MAX + 1).filter(|&other| other != size) {
                let accepted = verify_inclusion(index, wrong_size, &leaf, &proof, &root).is_ok();
                let same_shape = path_shape(index, wrong_size, proof.len()) == shape;
                assert_eq!(
                    accepted, same_shape,
                    "leaf {index} of {size} checked as a tree of {wrong_size}"
                );
                match accepted {
                    true => wrong_sizes_accepted += 1,
                    false => wrong_sizes_refused += 1,
                }
            }
        }
    }
    eprintln!("wrong sizes: {wrong_sizes_accepted} accepted (same path shape), {wrong_sizes_refused} refused");
    assert!(wrong_sizes_refused > wrong_sizes_accepted);
}

#[test]
fn exhaustive_consistency_proofs_up_to_64_leaves() {
    let leaf_hashes = test_leaf_hashes(EXHAUSTIVE_SIZE_MAX);
    let roots: Vec<Hash> = (0..=EXHAUSTIVE_SIZE_MAX as usize)
        .map(|size| reference_root(&leaf_hashes[..size]))
        .collect();
    for new_size in 1..=EXHAUSTIVE_SIZE_MAX {
        let new_root = roots[new_size as usize];
        // The empty tree is a prefix of every tree, with an empty proof and the empty root.
        assert!(consistency_proof(&leaf_hashes, 0, new_size)
            .unwrap()
            .is_empty());
        verify_consistency(0, new_size, &empty_root(), &new_root, &[]).unwrap();
        assert!(verify_consistency(0, new_size, &new_root, &new_root, &[]).is_err());
        assert!(verify_consistency(0, new_size, &empty_root(), &new_root, &[new_root]).is_err());

        for old_size in 1..=new_size {
            let old_root = roots[old_size as usize];
            let proof = consistency_proof(&leaf_hashes, old_size, new_size).unwrap();
            verify_consistency(old_size, new_size, &old_root, &new_root, &proof)
                .unwrap_or_else(|error| panic!("{old_size} -> {new_size}: {error}"));
            if old_size == new_size {
                assert!(proof.is_empty());
            }
            for changed in proof_one_byte_changes(&proof) {
                assert!(
                    verify_consistency(old_size, new_size, &old_root, &new_root, &changed).is_err(),
                    "{old_size} -> {new_size} accepted a changed proof"
                );
            }
            for changed_root in one_byte_changes(&old_root) {
                assert!(
                    verify_consistency(old_size, new_size, &changed_root, &new_root, &proof)
                        .is_err()
                );
            }
            for changed_root in one_byte_changes(&new_root) {
                assert!(
                    verify_consistency(old_size, new_size, &old_root, &changed_root, &proof)
                        .is_err()
                );
            }
            let mut longer = proof.clone();
            longer.push(new_root);
            assert!(verify_consistency(old_size, new_size, &old_root, &new_root, &longer).is_err());
            if !proof.is_empty() {
                assert!(
                    verify_consistency(old_size, new_size, &old_root, &new_root, &proof[1..])
                        .is_err()
                );
            }
            // Sizes swapped: a log never shrinks.
            if old_size < new_size {
                assert_eq!(
                    verify_consistency(new_size, old_size, &new_root, &old_root, &proof),
                    Err(MerkleError::OldSizeLarger {
                        old_size: new_size,
                        new_size: old_size
                    })
                );
            }
        }
    }
    assert!(consistency_proof(&leaf_hashes, 2, 1).is_err());
    assert!(consistency_proof(&leaf_hashes, 1, EXHAUSTIVE_SIZE_MAX + 1).is_err());
}

#[test]
fn streaming_builder_matches_batch_root_up_to_200_leaves() {
    let leaf_hashes = test_leaf_hashes(200);
    let mut builder = MerkleBuilder::new();
    assert_eq!(builder.root(), empty_root());
    for count in 0..=200usize {
        let batch_root = reference_root(&leaf_hashes[..count]);
        assert_eq!(builder.leaf_count(), count as u64);
        assert_eq!(builder.root(), batch_root, "{count} leaves");
        assert_eq!(root_from_leaf_hashes(&leaf_hashes[..count]), batch_root);
        if count < 200 {
            builder.push_leaf_hash(leaf_hashes[count]);
        }
    }
}

#[test]
fn leaf_data_is_hashed_with_the_leaf_prefix() {
    // Each event hash is one leaf's data: leaf = SHA-256(0x00 || event_hash).
    let event_hashes: Vec<Hash> = (0u8..10).map(|byte| [byte; 32]).collect();
    let mut builder = MerkleBuilder::new();
    for event_hash in &event_hashes {
        builder.push_leaf_data(event_hash);
    }
    let leaf_hashes: Vec<Hash> = event_hashes.iter().map(|event| leaf_hash(event)).collect();
    assert_eq!(builder.root(), reference_root(&leaf_hashes));
    assert_eq!(builder.root(), root_from_leaf_data(&event_hashes));
    // An inner node can never pass for a leaf.
    assert_ne!(leaf_hash(&[0u8; 64]), node_hash(&[0u8; 32], &[0u8; 32]));
}

fn any_size() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..70,
        any::<u64>(),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(1u64 << 63)
    ]
}

fn any_proof() -> impl Strategy<Value = Vec<Hash>> {
    prop::collection::vec(any::<[u8; 32]>(), 0..70)
}

proptest! {
    #[test]
    fn hostile_inclusion_inputs_never_panic(
        index in any_size(),
        size in any_size(),
        leaf in any::<[u8; 32]>(),
        proof in any_proof(),
        root in any::<[u8; 32]>(),
    ) {
        let _ = verify_inclusion(index, size, &leaf, &proof, &root);
        let leaf_hashes = test_leaf_hashes(8);
        let _ = inclusion_proof(&leaf_hashes, index, size);
    }

    #[test]
    fn hostile_consistency_inputs_never_panic(
        old_size in any_size(),
        new_size in any_size(),
        old_root in any::<[u8; 32]>(),
        new_root in any::<[u8; 32]>(),
        proof in any_proof(),
    ) {
        let _ = verify_consistency(old_size, new_size, &old_root, &new_root, &proof);
        let leaf_hashes = test_leaf_hashes(8);
        let _ = consistency_proof(&leaf_hashes, old_size, new_size);
    }

    #[test]
    fn random_proofs_for_real_roots_are_refused(
        size in 1u64..=64,
        index_seed in any::<u64>(),
        proof in any_proof(),
    ) {
        let leaf_hashes = test_leaf_hashes(size);
        let index = index_seed % size;
        let root = reference_root(&leaf_hashes);
        let genuine = inclusion_proof(&leaf_hashes, index, size).unwrap();
        prop_assume!(proof != genuine);
        prop_assert!(verify_inclusion(index, size, &leaf_hashes[index as usize], &proof, &root).is_err());
    }
}
