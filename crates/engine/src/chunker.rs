//! Content-defined row-block boundaries. A chunk ends after a row when the chunk has reached
//! `min_bytes` and the hash of the row's key falls under a threshold proportional to the row's
//! encoded size, or when it reaches `max_bytes`. Because the hash covers only the key, an
//! insert, update or delete changes the chunk holding that row (and at most its neighbour
//! while the next boundaries resynchronise), never the rest of the table.

use serde::{Deserialize, Serialize};

/// Chunking parameters, fixed per repository so that snapshots of the same data deduplicate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    /// No boundary before a chunk has this many encoded bytes.
    pub min_bytes: u32,
    /// Expected bytes between `min_bytes` and a boundary; chunks average about
    /// `min_bytes + span_bytes`.
    pub span_bytes: u32,
    /// A boundary is forced once a chunk has this many bytes (a single larger row still
    /// forms one chunk).
    pub max_bytes: u32,
}

impl Default for ChunkerParams {
    /// 16 KiB minimum and a 48 KiB span give chunks of about 64 KiB: large enough that a
    /// 10 GB database has about 160,000 chunks, small enough that a one-row change rewrites
    /// little. The 1 MiB maximum is 22 spans, so a forced cut (which does not resynchronise)
    /// happens with probability about e^-21.
    fn default() -> Self {
        ChunkerParams { min_bytes: 16 * 1024, span_bytes: 48 * 1024, max_bytes: 1024 * 1024 }
    }
}

/// Hashes a row key (the rowid, or the encoded primary-key values of a WITHOUT ROWID table)
/// to 64 well-mixed bits: FNV-1a over the bytes, finished with the SplitMix64 mixer.
pub fn key_hash(key: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(hash)
}

/// Hashes a rowid; equal to `key_hash` of its 8 little-endian bytes.
pub fn rowid_hash(rowid: i64) -> u64 {
    key_hash(&rowid.to_le_bytes())
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl ChunkerParams {
    /// Decides whether the chunk ends after a row. `chunk_bytes` counts the encoded rows in
    /// the chunk including this one, `row_bytes` this row alone.
    pub fn is_boundary(&self, chunk_bytes: usize, row_bytes: usize, key_hash: u64) -> bool {
        if chunk_bytes >= self.max_bytes as usize {
            return true;
        }
        if chunk_bytes < self.min_bytes as usize {
            return false;
        }
        // P(boundary) = row_bytes / span_bytes, so the expected distance past the minimum is
        // span_bytes whatever the row size.
        let threshold = (u128::from(u64::MAX) * row_bytes as u128 / u128::from(self.span_bytes.max(1)))
            .min(u128::from(u64::MAX)) as u64;
        key_hash < threshold
    }
}

/// Parameters of the content-defined index tree over a table's chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeParams {
    /// No node boundary before a node has this many entries.
    pub min_entries: u32,
    /// One entry in `span_entries` past the minimum ends a node, chosen by the child's id.
    pub span_entries: u32,
    /// A node never holds more entries than this.
    pub max_entries: u32,
}

impl Default for TreeParams {
    /// Nodes average about 160 entries (a fan-out in the hundreds, as wide nodes keep the
    /// tree two or three levels deep for 160,000 chunks) and stay under 40 KiB.
    fn default() -> Self {
        TreeParams { min_entries: 32, span_entries: 128, max_entries: 1024 }
    }
}

impl TreeParams {
    pub fn is_boundary(&self, entries: usize, child_low_u64: u64) -> bool {
        if entries >= self.max_entries as usize {
            return true;
        }
        if entries < self.min_entries as usize {
            return false;
        }
        child_low_u64 % u64::from(self.span_entries.max(1)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_boundary_below_minimum() {
        let params = ChunkerParams::default();
        assert!(!params.is_boundary(100, 100, 0));
    }

    #[test]
    fn boundary_forced_at_maximum() {
        let params = ChunkerParams::default();
        assert!(params.is_boundary(params.max_bytes as usize, 100, u64::MAX));
    }

    #[test]
    fn average_chunk_size_near_target() {
        let params = ChunkerParams::default();
        let row_bytes = 120;
        let mut chunks = 0u64;
        let mut chunk_bytes = 0usize;
        let rows = 400_000i64;
        for rowid in 0..rows {
            chunk_bytes += row_bytes;
            if params.is_boundary(chunk_bytes, row_bytes, rowid_hash(rowid)) {
                chunks += 1;
                chunk_bytes = 0;
            }
        }
        let average = rows as u64 * row_bytes as u64 / chunks;
        assert!((48_000..=80_000).contains(&average), "average chunk {average} bytes");
    }

    #[test]
    fn key_hash_known_answer() {
        // Pinned (computed independently from the FNV-1a and SplitMix64 definitions) so that a
        // change of the boundary hash, which would break deduplication against existing
        // repositories, cannot slip through.
        assert_eq!(rowid_hash(1), 0x5ca6_bbcb_b1e8_5355);
        assert_eq!(key_hash(b""), 0xf52a_15e9_a9b5_e89b);
    }
}
