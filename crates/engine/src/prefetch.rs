//! Reads chunks ahead of their consumer: worker threads read, decompress and hash-check the
//! next chunks while the calling thread works on the current one, so restore and verify use
//! both cores instead of waiting on zstd and BLAKE3 between chunks, and read neighbouring
//! chunks of a pack with one request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::id::Digest;
use crate::object::Kind;
use crate::object::tree::NodeEntry;
use crate::repo::Repository;

/// Runs of chunks each worker may queue before the consumer takes them. With two workers
/// at most six runs are in memory: two queued and one in hand per worker.
const READY_PER_WORKER: usize = 2;

/// Stored bytes read with one request: neighbouring chunks of a pack up to this size are
/// read together, which turns thousands of small reads of an R2 repository into a few
/// dozen. A run contains at most this much compressed, about four times as much plain.
const RUN_BYTES: u64 = 1024 * 1024;

/// Time the reader threads spent, summed over the threads (so it can exceed wall time).
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadTimes {
    /// Reading stored chunks from the repository.
    pub read: Duration,
    /// Decompressing chunks and checking their hashes.
    pub decompress: Duration,
}

/// Calls `visit` with the index and the plain payload of the chunk of every entry, in order.
/// The entries are cut into runs of chunks that sit side by side in a pack (see
/// `Repository::plan_runs`). Worker `k` of `workers` reads runs `k`, `k + workers`, ...
/// with one request each and hands them over through its own bounded channel, so the
/// consumer receives them in order without a reordering buffer. A read error is passed to
/// `visit` for that chunk. The first error that `visit` returns stops the workers and is
/// returned.
pub fn for_each_chunk_read_ahead(
    repo: &Repository,
    entries: &[NodeEntry],
    referenced_by: &str,
    workers: usize,
    visit: &mut dyn FnMut(usize, Result<Vec<u8>>) -> Result<()>,
) -> Result<ReadTimes> {
    let ids: Vec<Digest> = entries.iter().map(|e| e.id).collect();
    let runs = repo.plan_runs(Kind::Chunk, &ids, RUN_BYTES)?;
    let workers = workers.clamp(1, runs.len().max(1));
    let read_nanos = AtomicU64::new(0);
    let decompress_nanos = AtomicU64::new(0);
    let result = std::thread::scope(|scope| {
        let mut receivers = Vec::with_capacity(workers);
        for worker in 0..workers {
            let (sender, receiver) = mpsc::sync_channel::<Vec<Result<Vec<u8>>>>(READY_PER_WORKER);
            receivers.push(receiver);
            let (read_nanos, decompress_nanos, runs, ids) = (&read_nanos, &decompress_nanos, &runs, &ids);
            scope.spawn(move || {
                for run in runs.iter().skip(worker).step_by(workers) {
                    let run_ids = &ids[run.clone()];
                    let started = Instant::now();
                    let stored = repo.fetch_run(Kind::Chunk, run_ids, referenced_by);
                    let fetched = Instant::now();
                    let plains: Vec<Result<Vec<u8>>> = stored
                        .into_iter()
                        .zip(run_ids)
                        .map(|(stored, id)| stored.and_then(|stored| repo.open_object(Kind::Chunk, id, &stored)))
                        .collect();
                    read_nanos.fetch_add((fetched - started).as_nanos() as u64, Ordering::Relaxed);
                    decompress_nanos.fetch_add(fetched.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    // A failed send means the consumer stopped, so this worker stops too.
                    if sender.send(plains).is_err() {
                        break;
                    }
                }
            });
        }
        // The receivers are dropped when this closure returns, before the scope joins the
        // workers, so a worker blocked on a full channel is released by a send error.
        for (number, run) in runs.iter().enumerate() {
            let plains = receivers[number % workers]
                .recv()
                .map_err(|_| Error::Invalid("a chunk reader thread stopped unexpectedly".into()))?;
            for (index, plain) in run.clone().zip(plains) {
                visit(index, plain)?;
            }
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
        // Small packs, so the chunks spread over several and runs end at pack boundaries.
        let repo = Repository::open_or_create(store).unwrap().with_pack_target(60);
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

    /// Checks that chunk `i` of `entries`, whose bytes are all `i`, reaches `visit` as the
    /// `i`-th call, with each worker count.
    fn assert_chunks_arrive_in_order(repo: &Repository, entries: &[NodeEntry], worker_counts: &[usize]) {
        for &workers in worker_counts {
            let mut seen = Vec::new();
            for_each_chunk_read_ahead(repo, entries, "test", workers, &mut |index, plain| {
                seen.push((index, plain?[0]));
                Ok(())
            })
            .unwrap();
            let expected: Vec<(usize, u8)> = (0..entries.len()).map(|i| (i, i as u8)).collect();
            assert_eq!(seen, expected, "with {workers} workers");
        }
    }

    #[test]
    fn chunks_arrive_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, entries) = repository_with_chunks(dir.path(), 11);
        assert_chunks_arrive_in_order(&repo, &entries, &[1, 2, 3]);
    }

    #[test]
    fn stored_chunks_arrive_in_order_from_runs() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, entries) = repository_with_chunks(dir.path(), 11);
        repo.flush().unwrap();
        let ids: Vec<Digest> = entries.iter().map(|e| e.id).collect();
        let runs = repo.plan_runs(Kind::Chunk, &ids, RUN_BYTES).unwrap();
        assert!(runs.len() > 1, "runs {runs:?}");
        assert!(runs.len() < ids.len(), "runs {runs:?}");
        assert_chunks_arrive_in_order(&repo, &entries, &[1, 2]);
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
