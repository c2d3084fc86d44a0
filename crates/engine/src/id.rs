//! Object ids: one 32-byte BLAKE3 digest type and a distinct id type per object kind, so a
//! chunk id can never be passed where a table id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A BLAKE3-256 digest. Binary formats (postcard) store its 32 bytes; human-readable ones
/// (JSON) a 64-digit lowercase hex string.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_hex())
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            <[u8; 32]>::deserialize(deserializer).map(Digest)
        }
    }
}

impl Digest {
    /// Hashes `bytes` with plain (unkeyed) BLAKE3.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Returns the first 8 bytes as a little-endian integer, used to place tree-node boundaries.
    pub fn low_u64(&self) -> u64 {
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(word)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..16])
    }
}

/// Error from parsing a hex digest.
#[derive(Debug, thiserror::Error)]
#[error("invalid id {text:?}: expected 64 hexadecimal characters")]
pub struct ParseDigestError {
    pub text: String,
}

impl FromStr for Digest {
    type Err = ParseDigestError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(|_| ParseDigestError { text: text.to_string() })?;
        Ok(Digest(out))
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Digest);

        impl $name {
            pub fn to_hex(&self) -> String {
                self.0.to_hex()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = ParseDigestError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Digest::from_str(text).map($name)
            }
        }
    };
}

id_type!(
    /// Id of a chunk: BLAKE3 of its plain (uncompressed) row-block bytes.
    ChunkId
);
id_type!(
    /// Id of a table index-tree node: BLAKE3 of its plain serialized bytes.
    NodeId
);
id_type!(
    /// Id of a table object, which is also the table's Merkle root.
    TableId
);
id_type!(
    /// Id of a snapshot record: BLAKE3 of its plain serialized bytes.
    SnapshotId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_hex_round_trip() {
        let digest = Digest::of(b"d1snap");
        let parsed: Digest = digest.to_hex().parse().unwrap();
        assert_eq!(parsed, digest);
    }

    #[test]
    fn digest_postcard_form_is_32_raw_bytes() {
        let digest = Digest([7; 32]);
        assert_eq!(postcard::to_stdvec(&digest).unwrap(), vec![7u8; 32]);
    }

    #[test]
    fn digest_json_form_is_hex() {
        let digest = Digest([0xab; 32]);
        assert_eq!(serde_json::to_string(&digest).unwrap(), format!("\"{}\"", "ab".repeat(32)));
    }

    #[test]
    fn digest_parse_rejects_short_text() {
        assert!("abcd".parse::<Digest>().is_err());
    }

    #[test]
    fn digest_of_empty_input_matches_blake3_vector() {
        // Published BLAKE3 test vector for the empty input.
        assert_eq!(
            Digest::of(b"").to_hex(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }
}
