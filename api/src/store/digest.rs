//! State digests for anti-entropy: a region's live items, summarised per bucket of ids.
//!
//! Every live record adds a 16-byte hash of its write (`id`, `updated_at`, `updated_in`) into
//! the bucket of its id by XOR, so a write updates its bucket in O(1) (take the old write out,
//! put the new one in) and two regions holding the same writes hold the same digests whatever
//! the order they saw them in. Tombstones count as absent: a deleted item and one never written
//! look the same, which lets tombstones be collected without changing any digest.

use sha2::{Digest as _, Sha256};
use tandem_shared::Record;

/// How many buckets ids are spread over (one bit each in a `u64` mask).
pub const BUCKETS: usize = 64;

/// One bucket's digest.
pub type BucketDigest = [u8; 16];

/// The bucket of an id: stable across regions and releases.
pub fn bucket_of(id: &str) -> usize {
    let h = Sha256::digest(id.as_bytes());
    h[0] as usize % BUCKETS
}

/// The bit of an id's bucket in a mask of buckets.
pub fn bit_of(id: &str) -> u64 {
    1 << bucket_of(id)
}

/// The mask of a set of buckets.
pub fn mask_of(buckets: &[usize]) -> u64 {
    buckets.iter().fold(0, |m, b| m | 1 << b)
}

/// What a live record contributes to its bucket; `None` for a tombstone.
pub fn contribution(record: &Record) -> Option<BucketDigest> {
    if record.is_tombstone() {
        return None;
    }
    let mut h = Sha256::new();
    h.update(record.id.as_bytes());
    h.update([0]);
    h.update(record.updated_at_ms.to_be_bytes());
    h.update(record.updated_in.as_bytes());
    let full = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    Some(out)
}

/// `acc ^= x`.
pub fn xor_into(acc: &mut BucketDigest, x: &BucketDigest) {
    for (a, b) in acc.iter_mut().zip(x) {
        *a ^= b;
    }
}

/// The buckets whose digests differ.
pub fn differing(a: &[BucketDigest], b: &[BucketDigest]) -> Vec<usize> {
    (0..BUCKETS).filter(|&i| a.get(i) != b.get(i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, ts: u64, live: bool) -> Record {
        Record {
            id: id.into(),
            data: live.then(Default::default),
            version: 1,
            updated_at_ms: ts,
            updated_in: "us-east-1".into(),
        }
    }

    #[test]
    fn order_does_not_matter_and_tombstones_count_as_absent() {
        let (a, b) = (rec("a", 1, true), rec("b", 2, true));
        let mut x = [0u8; 16];
        xor_into(&mut x, &contribution(&a).unwrap());
        xor_into(&mut x, &contribution(&b).unwrap());
        let mut y = [0u8; 16];
        xor_into(&mut y, &contribution(&b).unwrap());
        xor_into(&mut y, &contribution(&a).unwrap());
        assert_eq!(x, y);
        assert_ne!(x, [0u8; 16]);
        assert_eq!(contribution(&rec("a", 1, false)), None);
        // Another write to the same id is another contribution.
        assert_ne!(contribution(&a), contribution(&rec("a", 3, true)));
        assert!(bucket_of("a") < BUCKETS);
        assert_eq!(bucket_of("a"), bucket_of("a"));
        assert_eq!(bit_of("a"), mask_of(&[bucket_of("a")]));
        assert_eq!(mask_of(&[0, 63]), 1 | 1 << 63);
    }
}
