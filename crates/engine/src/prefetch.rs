//! Reads chunks ahead of their consumer: worker threads read, decompress and hash-check the
//! next chunks while the calling thread works on the current one, so restore and verify use
//! both cores instead of waiting on zstd and BLAKE3 between chunks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::id::ChunkId;
use crate::object::Kind;
use crate::object::tree::NodeEntry;
use crate::repo::Repository;

/// Finished chunks each worker may queue before the consumer takes them. A worker also holds
/// the chunk it is handing over, so with two workers at most seven chunks are in memory,
/// counting the one being visited. A chunk is at most 1 MiB plus one row, so memory stays
/// flat whatever the table size.
const READY_PER_WORKER: usize = 2;

/// Time the reader threads spent, summed over the threads (so it can exceed wall time).
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadTimes {
    /// Reading stored chunks from the repository.
    pub read: Duration,
    /// Decompressing chunks and checking their hashes.
    pub decompress: Duration,
}

/// Calls `visit` with the index and the plain payload of the chunk of every entry, in order.
/// Worker `k` of `workers` reads the chunks at indexes `k`, `k + workers`, ... and hands them
/// over through its own bounded channel, so the consumer receives them in order without a
/// reordering buffer. A read error is passed to `visit` for that chunk. The first error that
/// `visit` returns stops the workers and is returned.
pub fn for_each_chunk_read_ahead(
    repo: &Repository,
    entries: &[NodeEntry],
    referenced_by: &str,
    workers: usize,
    visit: &mut dyn FnMut(usize, Result<Vec<u8>>) -> Result<()>,
) -> Result<ReadTimes> {
    let workers = workers.clamp(1, entries.len().max(1));
    let read_nanos = AtomicU64::new(0);
    let decompress_nanos = AtomicU64::new(0);
    let result = std::thread::scope(|scope| {
        let mut receivers = Vec::with_capacity(workers);
        for worker in 0..workers {
            let (sender, receiver) = mpsc::sync_channel::<Result<Vec<u8>>>(READY_PER_WORKER);
            receivers.push(receiver);
            let (read_nanos, decompress_nanos) = (&read_nanos, &decompress_nanos);
            scope.spawn(move || {
                for entry in entries.iter().skip(worker).step_by(workers) {
                    let id = ChunkId(entry.id);
                    let started = Instant::now();
                    let stored = repo.fetch_object(Kind::Chunk, &id.0, referenced_by);
                    let fetched = Instant::now();
                    let plain = stored.and_then(|stored| repo.open_object(Kind::Chunk, &id.0, &stored));
                    read_nanos.fetch_add((fetched - started).as_nanos() as u64, Ordering::Relaxed);
                    decompress_nanos.fetch_add(fetched.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    // A failed send means the consumer stopped, so this worker stops too.
                    if sender.send(plain).is_err() {
                        break;
                    }
                }
            });
        }
        // The receivers are dropped when this closure returns, before the scope joins the
        // workers, so a worker blocked on a full channel is released by a send error.
        for index in 0..entries.len() {
            let plain = receivers[index % workers]
                .recv()
                .map_err(|_| Error::Invalid("a chunk reader thread stopped unexpectedly".into()))?;
            visit(index, plain)?;
        }
        Ok(())
    });
    result.map(|()| ReadTimes {
        read: Duration::from_nanos(read_nanos.load(Ordering::Relaxed)),
        decompress: Duration::from_nanos(decompress_nanos.load(Ordering::Relaxed)),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::id::Digest;
    use crate::store::LocalStore;

    fn repository_with_chunks(dir: &std::path::Path, count: u8) -> (Repository, Vec<NodeEntry>) {
        let store = Arc::new(LocalStore::new(dir.join("repo")).unwrap());
        let repo = Repository::open_or_create(store).unwrap();
        let entries = (0..count)
            .map(|i| {
                let plain = vec![i; 100 + usize::from(i)];
                let id = Digest::of(&plain);
                repo.put_object(Kind::Chunk, id, &plain).unwrap();
                NodeEntry { id, rows: 1, bytes: plain.len() as u64 }
            })
            .collect();
        (repo, entries)
    }

    #[test]
    fn chunks_arrive_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, entries) = repository_with_chunks(dir.path(), 11);
        for workers in [1, 2, 3] {
            let mut seen = Vec::new();
            for_each_chunk_read_ahead(&repo, &entries, "test", workers, &mut |index, plain| {
                seen.push((index, plain?[0]));
                Ok(())
            })
            .unwrap();
            let expected: Vec<(usize, u8)> = (0..11).map(|i| (usize::from(i), i)).collect();
            assert_eq!(seen, expected, "with {workers} workers");
        }
    }

    #[test]
    fn missing_chunk_is_passed_to_visit() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, mut entries) = repository_with_chunks(dir.path(), 3);
        entries.insert(1, NodeEntry { id: Digest::of(b"never stored"), rows: 1, bytes: 12 });
        let mut missing = Vec::new();
        for_each_chunk_read_ahead(&repo, &entries, "test", 2, &mut |index, plain| {
            if matches!(plain, Err(Error::Missing { .. })) {
                missing.push(index);
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(missing, vec![1]);
    }

    #[test]
    fn error_from_visit_stops_early() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, entries) = repository_with_chunks(dir.path(), 20);
        let mut visited = 0;
        let result = for_each_chunk_read_ahead(&repo, &entries, "test", 2, &mut |index, _| {
            visited += 1;
            if index == 4 { Err(Error::Invalid("stop".into())) } else { Ok(()) }
        });
        assert!(matches!(result, Err(Error::Invalid(_))));
        assert_eq!(visited, 5);
    }

    #[test]
    fn no_chunks_calls_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, _) = repository_with_chunks(dir.path(), 0);
        let mut calls = 0;
        for_each_chunk_read_ahead(&repo, &[], "test", 2, &mut |_, _| {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(calls, 0);
    }
}
