//! Progress reporting through a trait, so the engine never draws on a terminal.

/// Receives progress events from long operations. Every method has an empty default.
pub trait Progress: Sync {
    /// A table starts; `index` counts from 0 up to `total`.
    fn table_started(&self, _name: &str, _index: usize, _total: usize) {}
    /// More rows of the current table were processed, with their encoded bytes.
    fn advanced(&self, _rows: u64, _bytes: u64) {}
    fn table_finished(&self, _name: &str) {}
}

/// Discards every event.
pub struct NoProgress;

impl Progress for NoProgress {}
