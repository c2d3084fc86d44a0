//! Pack files: many object envelopes in one stored file, so a snapshot writes a few large
//! files (or R2 objects) instead of one per chunk.
//!
//! Layout: `D1PK`, a version byte (1), the envelopes back to back, then a directory (a zstd
//! frame of the postcard-encoded [`PackDirectory`]), its length as a little-endian `u32`, and
//! `D1PK` again. The directory repeats the index files' entries for the pack, so the index
//! can be rebuilt from the packs alone. A pack's id is the BLAKE3 hash of all its
//! bytes; its key is `packs/<first two hex digits>/<id>`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::Digest;
use crate::object::Kind;

pub const PACK_MAGIC: &[u8; 4] = b"D1PK";
pub const PACK_VERSION: u8 = 1;
pub const DIRECTORY_VERSION: u8 = 1;
const HEADER_LEN: usize = 5;
const TRAILER_LEN: usize = 8;

/// Location of one object in its pack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackEntry {
    /// The object's [`Kind`] as its byte.
    pub kind: u8,
    pub id: Digest,
    /// Offset of the envelope from the start of the pack.
    pub offset: u64,
    pub length: u32,
    /// The object this one is stored against (see `object::seal_delta`); the base must stay
    /// as long as this object does.
    pub base: Option<Digest>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackDirectory {
    pub version: u8,
    pub entries: Vec<PackEntry>,
}

pub fn pack_key(id: &Digest) -> String {
    let hex = id.to_hex();
    format!("packs/{}/{hex}", &hex[..2])
}

/// Parses the id from a key under `packs/`.
pub fn pack_id_of_key(key: &str) -> Option<Digest> {
    key.strip_prefix("packs/")?.rsplit('/').next()?.parse().ok()
}

/// Collects envelopes into a pack in memory.
#[derive(Debug)]
pub struct PackBuilder {
    bytes: Vec<u8>,
    entries: Vec<PackEntry>,
}

impl Default for PackBuilder {
    fn default() -> Self {
        PackBuilder::in_buffer(Vec::new())
    }
}

/// A finished pack, ready to store.
pub struct FinishedPack {
    pub id: Digest,
    pub bytes: Vec<u8>,
    pub entries: Vec<PackEntry>,
    /// Bytes of the pack that are not object envelopes: header, directory and trailer.
    pub framing_bytes: u64,
}

impl PackBuilder {
    /// Starts a pack in `bytes`, reusing its allocation: a pack written earlier can lend its
    /// buffer to the next one, which saves mapping and zeroing fresh memory for each pack.
    pub fn in_buffer(mut bytes: Vec<u8>) -> PackBuilder {
        bytes.clear();
        bytes.extend_from_slice(PACK_MAGIC);
        bytes.push(PACK_VERSION);
        PackBuilder { bytes, entries: Vec::new() }
    }

    /// Makes room for `additional` more bytes at once, so the buffer does not grow by
    /// doubling (and copying) on its way to the pack size.
    pub fn reserve(&mut self, additional: usize) {
        self.bytes.reserve(additional);
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends an envelope and returns its offset in the pack.
    pub fn push(&mut self, kind: Kind, id: Digest, base: Option<Digest>, stored: &[u8]) -> u64 {
        let offset = self.bytes.len() as u64;
        self.bytes.extend_from_slice(stored);
        self.entries.push(PackEntry { kind: kind as u8, id, offset, length: stored.len() as u32, base });
        offset
    }

    /// Returns the envelope stored at `offset`, for reads of an object not yet written.
    pub fn envelope(&self, offset: u64, length: u32) -> Option<&[u8]> {
        self.bytes.get(offset as usize..offset as usize + length as usize)
    }

    pub fn finish(self) -> Result<FinishedPack> {
        let PackBuilder { mut bytes, entries } = self;
        let objects: u64 = entries.iter().map(|e| u64::from(e.length)).sum();
        let directory = PackDirectory { version: DIRECTORY_VERSION, entries };
        let plain = postcard::to_stdvec(&directory).map_err(|e| Error::Invalid(format!("cannot serialize a pack directory: {e}")))?;
        let frame = zstd::bulk::compress(&plain, 3).map_err(|e| Error::io("compressing a pack directory", e))?;
        bytes.extend_from_slice(&frame);
        bytes.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        bytes.extend_from_slice(PACK_MAGIC);
        let id = Digest::of(&bytes);
        let framing_bytes = bytes.len() as u64 - objects;
        Ok(FinishedPack { id, bytes, entries: directory.entries, framing_bytes })
    }
}

/// Reads the directory at the end of a whole pack, checking the pack's hash first.
pub fn read_directory(id: &Digest, bytes: &[u8]) -> Result<Vec<PackEntry>> {
    let corrupt = |detail: String| Error::Corrupt { kind: "pack", id: id.to_hex(), detail };
    let actual = Digest::of(bytes);
    if actual != *id {
        return Err(corrupt(format!("content hashes to {actual}")));
    }
    if bytes.len() < HEADER_LEN + TRAILER_LEN || &bytes[..4] != PACK_MAGIC || &bytes[bytes.len() - 4..] != PACK_MAGIC {
        return Err(corrupt("the pack header or trailer is missing".into()));
    }
    if bytes[4] != PACK_VERSION {
        return Err(corrupt(format!("pack version {} is not supported (this d1snap reads {PACK_VERSION})", bytes[4])));
    }
    let length_at = bytes.len() - TRAILER_LEN;
    let length = u32::from_le_bytes(bytes[length_at..length_at + 4].try_into().expect("four bytes")) as usize;
    let start = length_at.checked_sub(length).filter(|start| *start >= HEADER_LEN).ok_or_else(|| corrupt("the directory length is out of range".into()))?;
    let plain = zstd::bulk::decompress(&bytes[start..length_at], crate::object::MAX_PLAIN_BYTES)
        .map_err(|e| corrupt(format!("the directory does not decompress: {e}")))?;
    let directory: PackDirectory = postcard::from_bytes(&plain).map_err(|e| corrupt(format!("the directory does not decode: {e}")))?;
    if directory.version != DIRECTORY_VERSION {
        return Err(corrupt(format!("directory version {} is not supported", directory.version)));
    }
    Ok(directory.entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::{open, seal};

    #[test]
    fn directory_lists_every_envelope() {
        let mut builder = PackBuilder::default();
        let plains: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 1000 + usize::from(i)]).collect();
        for plain in &plains {
            builder.push(Kind::Chunk, Digest::of(plain), None, &seal(Kind::Chunk, plain, Some(3)).unwrap());
        }
        let pack = builder.finish().unwrap();
        let entries = read_directory(&pack.id, &pack.bytes).unwrap();
        assert_eq!(entries, pack.entries);
        for (entry, plain) in entries.iter().zip(&plains) {
            let envelope = &pack.bytes[entry.offset as usize..][..entry.length as usize];
            assert_eq!(&open(Kind::Chunk, &entry.id, envelope).unwrap(), plain);
        }
    }

    #[test]
    fn damaged_pack_is_corrupt() {
        let mut builder = PackBuilder::default();
        builder.push(Kind::Node, Digest::of(b"n"), None, &seal(Kind::Node, b"n", None).unwrap());
        let mut pack = builder.finish().unwrap();
        pack.bytes[6] ^= 1;
        assert!(matches!(read_directory(&pack.id, &pack.bytes), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn pack_key_round_trips() {
        let id = Digest([0xab; 32]);
        assert!(pack_key(&id).starts_with("packs/ab/abab"));
        assert_eq!(pack_id_of_key(&pack_key(&id)), Some(id));
    }
}
