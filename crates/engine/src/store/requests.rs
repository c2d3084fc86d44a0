//! Counts of the requests a store makes, by kind, with the bytes sent and received: what an
//! S3 or R2 bill is computed from.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// The kinds of request a provider bills separately. Multipart create and complete count as
/// PUT, and abort as DELETE, as R2 and S3 bill them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    Put,
    Get,
    Head,
    List,
    Delete,
}

/// Requests made since a store was opened. Every attempt counts, retried ones included,
/// because each one that reaches the provider is billed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    pub put: u64,
    pub get: u64,
    pub head: u64,
    pub list: u64,
    pub delete: u64,
    /// Request body bytes of every attempt.
    pub bytes_sent: u64,
    /// Response body bytes received.
    pub bytes_received: u64,
    /// Attempts that failed with a transient error and were tried again.
    pub retries: u64,
}

impl RequestCounts {
    pub fn total(&self) -> u64 {
        self.put + self.get + self.head + self.list + self.delete
    }
}

/// Thread-safe counters behind [`RequestCounts`].
#[derive(Debug, Default)]
pub struct RequestCounters {
    put: AtomicU64,
    get: AtomicU64,
    head: AtomicU64,
    list: AtomicU64,
    delete: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    retries: AtomicU64,
}

impl RequestCounters {
    /// Counts one request of `kind` whose body is `bytes_sent` long.
    pub fn request(&self, kind: RequestKind, bytes_sent: u64) {
        let counter = match kind {
            RequestKind::Put => &self.put,
            RequestKind::Get => &self.get,
            RequestKind::Head => &self.head,
            RequestKind::List => &self.list,
            RequestKind::Delete => &self.delete,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes_sent, Ordering::Relaxed);
    }

    pub fn received(&self, bytes: u64) {
        self.bytes_received.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn counts(&self) -> RequestCounts {
        RequestCounts {
            put: self.put.load(Ordering::Relaxed),
            get: self.get.load(Ordering::Relaxed),
            head: self.head.load(Ordering::Relaxed),
            list: self.list.load(Ordering::Relaxed),
            delete: self.delete.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }
}
