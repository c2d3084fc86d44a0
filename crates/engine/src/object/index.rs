//! Index files: which pack contains each packed object. A snapshot writes one index file for
//! the packs it wrote, before its record, and prune replaces them all with one. The payload
//! is postcard, stored as an envelope of kind 5 under `index/<id>`.

use serde::{Deserialize, Serialize};

use crate::id::Digest;
use crate::object::pack::PackEntry;

pub const INDEX_VERSION: u8 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexFile {
    pub version: u8,
    pub packs: Vec<PackRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackRecord {
    pub id: Digest,
    /// Size of the whole pack in bytes.
    pub length: u64,
    pub entries: Vec<PackEntry>,
}
