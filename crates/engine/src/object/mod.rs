//! The objects of a repository and their stored form.
//!
//! Every object is stored as an envelope: the 4 magic bytes `D1SN`, a kind byte, an envelope
//! version byte (1), a compression byte (0 = none, 1 = zstd, 2 = zstd against a base object),
//! then the payload. With compression 2 the payload starts with the 32-byte id of the base
//! object, and the zstd frame uses the base's plain bytes as its prefix. A chunk that differs
//! from its previous version in a few rows is thus stored as those few rows. An object's id is the
//! BLAKE3 hash of its plain payload, so reading an object checks it end to end.

pub mod chunk;
pub mod config;
pub mod index;
pub mod pack;
pub mod snapshot;
pub mod table;
pub mod tree;

use std::cell::RefCell;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::id::Digest;

pub const MAGIC: &[u8; 4] = b"D1SN";
pub const ENVELOPE_VERSION: u8 = 1;
const HEADER_LEN: usize = 7;

/// Largest plain payload accepted when decompressing, so a corrupt or hostile length field
/// cannot exhaust memory. A chunk is at most one max-size block plus one row of D1's
/// 2,000,000-byte row limit; tree nodes and table objects are far smaller.
pub const MAX_PLAIN_BYTES: usize = 64 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Chunk = 1,
    Node = 2,
    Table = 3,
    Snapshot = 4,
    Index = 5,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Chunk => "chunk",
            Kind::Node => "tree node",
            Kind::Table => "table object",
            Kind::Snapshot => "snapshot record",
            Kind::Index => "index file",
        }
    }

    pub fn from_byte(byte: u8) -> Option<Kind> {
        [Kind::Chunk, Kind::Node, Kind::Table, Kind::Snapshot, Kind::Index].into_iter().find(|k| *k as u8 == byte)
    }

    /// Returns whether objects of this kind live in packs (see `pack`) rather than in a store
    /// object of their own. Snapshot records and index files are listed by key, so they
    /// stay single objects.
    pub fn is_packed(self) -> bool {
        matches!(self, Kind::Chunk | Kind::Node | Kind::Table)
    }

    /// Returns the store key of an unpacked object (a snapshot record or an index file).
    pub fn key(self, id: &Digest) -> String {
        match self {
            Kind::Index => format!("index/{}", id.to_hex()),
            _ => format!("snapshots/{}", id.to_hex()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Compression {
    None = 0,
    Zstd = 1,
    ZstdDelta = 2,
}

/// Largest zstd window a delta frame may use: a base plus its new version, each at most
/// `MAX_PLAIN_BYTES`, fit in 2^27 bytes, the window any zstd decoder accepts by default.
const MAX_DELTA_WINDOW_LOG: u32 = 27;

/// Wraps a plain payload into its stored envelope.
pub fn seal(kind: Kind, plain: &[u8], zstd_level: Option<i32>) -> Result<Vec<u8>> {
    if plain.len() > MAX_PLAIN_BYTES {
        return Err(Error::Invalid(format!(
            "a {} of {} bytes is larger than the {MAX_PLAIN_BYTES}-byte object limit; a single row this large cannot be snapshotted (D1 allows rows up to 2,000,000 bytes)",
            kind.name(),
            plain.len()
        )));
    }
    let mut out = Vec::with_capacity(HEADER_LEN + plain.len() / 2);
    out.extend_from_slice(MAGIC);
    out.push(kind as u8);
    out.push(ENVELOPE_VERSION);
    match zstd_level {
        Some(level) => {
            out.push(Compression::Zstd as u8);
            let compressed = compress(plain, level).map_err(|e| Error::io(format!("compressing a {}", kind.name()), e))?;
            out.extend_from_slice(&compressed);
        }
        None => {
            out.push(Compression::None as u8);
            out.extend_from_slice(plain);
        }
    }
    Ok(out)
}

/// Wraps a plain payload as a delta against `base`: a zstd frame that refers back into the
/// base's plain bytes, so only what changed takes space.
pub fn seal_delta(kind: Kind, plain: &[u8], zstd_level: i32, base_id: &Digest, base: &[u8]) -> Result<Vec<u8>> {
    if plain.len() > MAX_PLAIN_BYTES || base.len() > MAX_PLAIN_BYTES {
        return seal(kind, plain, Some(zstd_level));
    }
    let failed = |code: usize| {
        Error::io(
            format!("compressing a {} against its base", kind.name()),
            std::io::Error::other(zstd::zstd_safe::get_error_name(code)),
        )
    };
    let window = (usize::BITS - (base.len() + plain.len()).leading_zeros()).clamp(10, MAX_DELTA_WINDOW_LOG);
    let mut out = Vec::with_capacity(HEADER_LEN + 32 + zstd::zstd_safe::compress_bound(plain.len()));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[kind as u8, ENVELOPE_VERSION, Compression::ZstdDelta as u8]);
    out.extend_from_slice(&base_id.0);
    let mut context = zstd::zstd_safe::CCtx::create();
    context.set_parameter(zstd::zstd_safe::CParameter::CompressionLevel(zstd_level)).map_err(failed)?;
    context.set_parameter(zstd::zstd_safe::CParameter::WindowLog(window)).map_err(failed)?;
    context.set_pledged_src_size(Some(plain.len() as u64)).map_err(failed)?;
    context.ref_prefix(base).map_err(failed)?;
    let mut frame = Vec::with_capacity(zstd::zstd_safe::compress_bound(plain.len()));
    context.compress2(&mut frame, plain).map_err(failed)?;
    out.extend_from_slice(&frame);
    Ok(out)
}

/// Returns the base object a stored envelope was compressed against, if any. A damaged
/// header yields `None`; opening the object reports the damage.
pub fn delta_base(stored: &[u8]) -> Option<Digest> {
    if stored.len() < HEADER_LEN + 32 || &stored[..4] != MAGIC || stored[6] != Compression::ZstdDelta as u8 {
        return None;
    }
    let mut id = [0u8; 32];
    id.copy_from_slice(&stored[HEADER_LEN..HEADER_LEN + 32]);
    Some(Digest(id))
}

/// Unwraps a stored envelope and checks that the plain payload hashes to `id`.
pub fn open(kind: Kind, id: &Digest, stored: &[u8]) -> Result<Vec<u8>> {
    open_with_base(kind, id, stored, None)
}

/// Unwraps a stored envelope whose base (see [`delta_base`]) has plain bytes `base`, and
/// checks that the plain payload hashes to `id`.
pub fn open_with_base(kind: Kind, id: &Digest, stored: &[u8], base: Option<&[u8]>) -> Result<Vec<u8>> {
    let corrupt = |detail: String| Error::Corrupt { kind: kind.name(), id: id.to_hex(), detail };
    if stored.len() < HEADER_LEN || &stored[..4] != MAGIC {
        return Err(corrupt("the object header is missing or damaged".into()));
    }
    if stored[4] != kind as u8 {
        return Err(corrupt(format!("kind byte is {}, expected {}", stored[4], kind as u8)));
    }
    if stored[5] != ENVELOPE_VERSION {
        return Err(corrupt(format!(
            "envelope version {} is not supported by this d1snap (supports {ENVELOPE_VERSION}); upgrade d1snap",
            stored[5]
        )));
    }
    let body = &stored[HEADER_LEN..];
    let plain = match stored[6] {
        0 => body.to_vec(),
        1 => decompress(body).map_err(|e| corrupt(format!("zstd decompression failed: {e}")))?,
        2 => {
            let Some(base) = base else {
                return Err(corrupt("it is stored against a base object that was not given".into()));
            };
            if body.len() < 32 {
                return Err(corrupt("the base id of a delta is cut short".into()));
            }
            decompress_delta(&body[32..], base).map_err(|e| corrupt(format!("zstd decompression against the base failed: {e}")))?
        }
        other => return Err(corrupt(format!("unknown compression byte {other}"))),
    };
    let actual = Digest::of(&plain);
    if actual != *id {
        return Err(corrupt(format!("content hashes to {actual}")));
    }
    Ok(plain)
}

thread_local! {
    /// One zstd decompression context per thread, reused across objects. Creating one per
    /// chunk took about a quarter of the decompression time in a profile of `verify --read-data`.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
    /// One compression context per thread and level, for the same reason on the write side.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
}

/// Compresses into one frame that records the plain size, which `decompress` relies on.
fn compress(plain: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().is_none_or(|(cached, _)| *cached != level) {
            *cell = Some((level, zstd::bulk::Compressor::new(level)?));
        }
        let (_, compressor) = cell.as_mut().expect("compressor is set");
        compressor.compress(plain)
    })
}

fn decompress(body: &[u8]) -> std::io::Result<Vec<u8>> {
    // d1snap's writer records the plain size in the frame header, so the output buffer is
    // allocated once. A frame without it (or a header too damaged to read) takes the
    // streaming path. A wrong size in a damaged header makes zstd fail, never overrun.
    match zstd::zstd_safe::get_frame_content_size(body) {
        Ok(Some(size)) if size > MAX_PLAIN_BYTES as u64 => {
            Err(std::io::Error::other("payload exceeds the maximum object size"))
        }
        Ok(Some(size)) => DECOMPRESSOR.with(|cell| {
            let mut cell = cell.borrow_mut();
            let decompressor = match cell.as_mut() {
                Some(decompressor) => decompressor,
                None => cell.insert(zstd::bulk::Decompressor::new()?),
            };
            let mut plain = Vec::with_capacity(size as usize);
            decompressor.decompress_to_buffer(body, &mut plain)?;
            Ok(plain)
        }),
        _ => decompress_stream(body),
    }
}

fn decompress_delta(frame: &[u8], base: &[u8]) -> std::io::Result<Vec<u8>> {
    let failed = |code: usize| std::io::Error::other(zstd::zstd_safe::get_error_name(code));
    let size = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(size)) if size <= MAX_PLAIN_BYTES as u64 => size as usize,
        Ok(Some(_)) => return Err(std::io::Error::other("payload exceeds the maximum object size")),
        _ => return Err(std::io::Error::other("the frame header does not give the payload size")),
    };
    let mut context = zstd::zstd_safe::DCtx::create();
    context.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(MAX_DELTA_WINDOW_LOG)).map_err(failed)?;
    context.ref_prefix(base).map_err(failed)?;
    let mut plain = Vec::with_capacity(size);
    context.decompress(&mut plain, frame).map_err(failed)?;
    Ok(plain)
}

fn decompress_stream(body: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut decoder = zstd::stream::read::Decoder::new(body)?;
    let mut plain = Vec::new();
    let read = (&mut decoder).take(MAX_PLAIN_BYTES as u64 + 1).read_to_end(&mut plain)?;
    if read > MAX_PLAIN_BYTES {
        return Err(std::io::Error::other("payload exceeds the maximum object size"));
    }
    Ok(plain)
}

/// Serializes a structured object with postcard.
pub fn to_plain<T: Serialize>(kind: Kind, value: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| Error::Invalid(format!("cannot serialize a {}: {e}", kind.name())))
}

/// Deserializes a structured object; any trailing byte counts as corruption.
pub fn from_plain<T: DeserializeOwned>(kind: Kind, id: &Digest, plain: &[u8]) -> Result<T> {
    let (value, rest) = postcard::take_from_bytes(plain)
        .map_err(|e| Error::Corrupt { kind: kind.name(), id: id.to_hex(), detail: format!("cannot decode: {e}") })?;
    if !rest.is_empty() {
        return Err(Error::Corrupt { kind: kind.name(), id: id.to_hex(), detail: format!("{} trailing bytes", rest.len()) });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip() {
        let plain = b"rows rows rows rows".repeat(50);
        let id = Digest::of(&plain);
        let stored = seal(Kind::Chunk, &plain, Some(3)).unwrap();
        assert_eq!(open(Kind::Chunk, &id, &stored).unwrap(), plain);
    }

    #[test]
    fn flipped_byte_is_corrupt() {
        let plain = b"some plain payload".to_vec();
        let id = Digest::of(&plain);
        let mut stored = seal(Kind::Chunk, &plain, None).unwrap();
        let last = stored.len() - 1;
        stored[last] ^= 0x01;
        assert!(matches!(open(Kind::Chunk, &id, &stored), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn wrong_kind_is_corrupt() {
        let plain = b"x".to_vec();
        let id = Digest::of(&plain);
        let stored = seal(Kind::Node, &plain, None).unwrap();
        assert!(matches!(open(Kind::Chunk, &id, &stored), Err(Error::Corrupt { .. })));
    }

    fn envelope(kind: Kind, zstd_body: &[u8]) -> Vec<u8> {
        let mut stored = MAGIC.to_vec();
        stored.extend_from_slice(&[kind as u8, ENVELOPE_VERSION, Compression::Zstd as u8]);
        stored.extend_from_slice(zstd_body);
        stored
    }

    #[test]
    fn frame_without_content_size_opens() {
        let plain = b"streamed rows ".repeat(200);
        let id = Digest::of(&plain);
        // The streaming encoder does not know the size up front, so the header omits it.
        let body = zstd::stream::encode_all(&plain[..], 3).unwrap();
        assert!(matches!(zstd::zstd_safe::get_frame_content_size(&body), Ok(None)));
        assert_eq!(open(Kind::Chunk, &id, &envelope(Kind::Chunk, &body)).unwrap(), plain);
    }

    #[test]
    fn content_size_above_maximum_is_corrupt() {
        // A frame header alone: magic number, a descriptor for a single segment with an
        // 8-byte content size, then that size.
        let mut body = vec![0x28, 0xb5, 0x2f, 0xfd, 0xe0];
        body.extend_from_slice(&(MAX_PLAIN_BYTES as u64 + 1).to_le_bytes());
        let result = open(Kind::Chunk, &Digest::of(b""), &envelope(Kind::Chunk, &body));
        assert!(matches!(result, Err(Error::Corrupt { .. })));
    }

    #[test]
    fn truncated_zstd_body_is_corrupt() {
        let plain = b"rows rows rows rows".repeat(50);
        let id = Digest::of(&plain);
        let mut stored = seal(Kind::Chunk, &plain, Some(3)).unwrap();
        stored.truncate(stored.len() - 3);
        assert!(matches!(open(Kind::Chunk, &id, &stored), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn delta_round_trips_and_is_small() {
        let base: Vec<u8> = (0..20_000u32).flat_map(|i| format!("row {i} payload {}\n", i * 7919 % 1000).into_bytes()).collect();
        let mut plain = base.clone();
        plain[10_000..10_004].copy_from_slice(b"EDIT");
        let (base_id, id) = (Digest::of(&base), Digest::of(&plain));
        let stored = seal_delta(Kind::Chunk, &plain, 3, &base_id, &base).unwrap();
        assert_eq!(delta_base(&stored), Some(base_id));
        assert!(stored.len() < 200, "a four-byte edit took {} bytes", stored.len());
        assert_eq!(open_with_base(Kind::Chunk, &id, &stored, Some(&base)).unwrap(), plain);
    }

    #[test]
    fn delta_without_or_with_wrong_base_is_corrupt() {
        let base = b"base rows ".repeat(300);
        let plain = b"base rows changed ".repeat(200);
        let stored = seal_delta(Kind::Chunk, &plain, 3, &Digest::of(&base), &base).unwrap();
        let id = Digest::of(&plain);
        assert!(matches!(open(Kind::Chunk, &id, &stored), Err(Error::Corrupt { .. })));
        let other = b"something else entirely".repeat(100);
        assert!(matches!(open_with_base(Kind::Chunk, &id, &stored, Some(&other)), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn frames_record_the_plain_size() {
        for plain in [b"first".repeat(100), b"second, longer".repeat(1000)] {
            let stored = seal(Kind::Chunk, &plain, Some(3)).unwrap();
            let size = zstd::zstd_safe::get_frame_content_size(&stored[HEADER_LEN..]).unwrap();
            assert_eq!(size, Some(plain.len() as u64));
        }
    }

    #[test]
    fn full_object_has_no_delta_base() {
        let stored = seal(Kind::Chunk, b"plain", Some(3)).unwrap();
        assert_eq!(delta_base(&stored), None);
    }
}
