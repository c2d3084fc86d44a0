//! Measures what the machine can do with a database's rows, as limits to compare d1snap with.
//!
//! `limits scan DB` reads every row of every table and touches every column (a plain SQLite
//! scan: the floor of any tool that reads the rows). `limits chunks DB` runs d1snap's own scan
//! without storing anything (timed as `hash_only_scan_ms`), keeps the plain chunks in memory,
//! and times BLAKE3 hashing, zstd level-3 compression, zstd decompression, and hashing plus
//! compression or decompression of those same bytes, each spread over `--threads` threads
//! (default 2) and given as the median of `--repeat` runs (default 3). Both print one JSON
//! object.
//!
//! Usage: `limits scan DB` or `limits chunks DB [--threads N] [--repeat N]`

use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use d1snap_engine::chunker::{ChunkerParams, TreeParams};
use d1snap_engine::id::Digest;
use d1snap_engine::object::Kind;
use d1snap_engine::progress::NoProgress;
use d1snap_engine::repo::Stored;
use d1snap_engine::scan::{ObjectSink, ScanParams, scan_database};
use d1snap_engine::source::{OpenedSource, SourceSpec};
use rusqlite::{Connection, OpenFlags};
use serde_json::json;

/// zstd level of d1snap's default repository configuration.
const ZSTD_LEVEL: i32 = 3;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("scan") if args.len() == 2 => scan(&args[1]),
        Some("chunks") if args.len() >= 2 => parse_chunk_options(&args[2..]).and_then(|(threads, repeat)| chunks(&args[1], threads, repeat)),
        _ => {
            eprintln!("usage: limits scan DB | limits chunks DB [--threads N] [--repeat N]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse_chunk_options(args: &[String]) -> Result<(usize, usize), String> {
    let mut threads = 2;
    let mut repeat = 3;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let value = iter.next().ok_or_else(|| format!("{arg} needs a value"))?;
        let number: usize = value.parse().map_err(|_| format!("invalid {arg} {value:?}; give a positive integer"))?;
        match arg.as_str() {
            "--threads" => threads = number.max(1),
            "--repeat" => repeat = number.max(1),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok((threads, repeat))
}

fn open(path: &str) -> Result<Connection, String> {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| format!("opening {path}: {e}"))
}

/// Names of the ordinary tables, without SQLite's internal ones.
fn table_names(conn: &Connection) -> Result<Vec<String>, String> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .map_err(|e| e.to_string())?;
    let names = stmt.query_map([], |row| row.get(0)).map_err(|e| e.to_string())?;
    names.collect::<Result<Vec<String>, _>>().map_err(|e| e.to_string())
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn value_len(value: rusqlite::types::ValueRef<'_>) -> u64 {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => 0,
        ValueRef::Integer(_) | ValueRef::Real(_) => 8,
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => bytes.len() as u64,
    }
}

/// Reads every row of every table in rowid order and touches every column. Every table of
/// the generated databases has a rowid.
fn scan(path: &str) -> Result<serde_json::Value, String> {
    let conn = open(path)?;
    let started = Instant::now();
    conn.execute_batch("BEGIN").map_err(|e| e.to_string())?;
    let (mut rows, mut value_bytes) = (0u64, 0u64);
    for table in table_names(&conn)? {
        let sql = format!("SELECT rowid, * FROM {} ORDER BY rowid", quote(&table));
        let mut stmt = conn.prepare(&sql).map_err(|e| format!("{sql}: {e}"))?;
        let columns = stmt.column_count();
        let mut cursor = stmt.query([]).map_err(|e| e.to_string())?;
        while let Some(row) = cursor.next().map_err(|e| e.to_string())? {
            for i in 0..columns {
                value_bytes += value_len(row.get_ref(i).map_err(|e| e.to_string())?);
            }
            rows += 1;
        }
    }
    conn.execute_batch("COMMIT").map_err(|e| e.to_string())?;
    Ok(json!({ "rows": rows, "value_bytes": value_bytes, "duration_ms": started.elapsed().as_millis() as u64 }))
}

/// Collects the plain chunks of a scan in memory and stores nothing.
#[derive(Default)]
struct ChunkCollector(Mutex<Vec<Vec<u8>>>);

impl ObjectSink for ChunkCollector {
    fn put(&self, kind: Kind, id: Digest, plain: &[u8], _previous: Option<&dyn Fn() -> Option<Digest>>) -> d1snap_engine::Result<Stored> {
        if kind == Kind::Chunk {
            self.0.lock().expect("chunk list lock").push(plain.to_vec());
        }
        Ok(Stored { id, new: true, stored_bytes: 0 })
    }
}

/// Makes the plain chunks d1snap makes of the database, with its default chunking
/// parameters, by running the engine's own scan.
fn encode_chunks(path: &str) -> Result<Vec<Vec<u8>>, String> {
    let source = OpenedSource::open(&SourceSpec::Path(path.into())).map_err(|e| e.to_string())?;
    let catalog = source.catalog().map_err(|e| e.to_string())?;
    let collector = ChunkCollector::default();
    let params = ScanParams {
        chunker: ChunkerParams::default(),
        tree: TreeParams::default(),
        sink: &collector,
        progress: &NoProgress,
        workers: ScanParams::default_workers(),
        previous: None,
    };
    scan_database(&source.conn, path, &catalog, &params).map_err(|e| e.to_string())?;
    Ok(collector.0.into_inner().expect("chunk list lock"))
}

/// Runs `work` on every item, spread over `threads` threads that take items in turn, and
/// returns the wall time in milliseconds.
fn timed_parallel<T: Sync>(items: &[T], threads: usize, work: impl Fn(&T) + Sync) -> f64 {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else { break };
                    work(item);
                }
            });
        }
    });
    started.elapsed().as_secs_f64() * 1000.0
}

/// Median of `repeat` timings of `measure`.
fn median_ms(repeat: usize, mut measure: impl FnMut() -> f64) -> f64 {
    let mut times: Vec<f64> = (0..repeat).map(|_| measure()).collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn chunks(path: &str, threads: usize, repeat: usize) -> Result<serde_json::Value, String> {
    let started = Instant::now();
    let chunks = encode_chunks(path)?;
    let hash_only_scan_ms = started.elapsed().as_secs_f64() * 1000.0;
    let plain_bytes: u64 = chunks.iter().map(|c| c.len() as u64).sum();
    let compressed: Vec<Vec<u8>> = chunks
        .iter()
        .map(|c| zstd::bulk::compress(c, ZSTD_LEVEL).map_err(|e| format!("zstd compression failed: {e}")))
        .collect::<Result<_, _>>()?;
    let compressed_bytes: u64 = compressed.iter().map(|c| c.len() as u64).sum();
    let max_plain = chunks.iter().map(Vec::len).max().unwrap_or(0);

    let hash_ms = median_ms(repeat, || {
        timed_parallel(&chunks, threads, |chunk| {
            std::hint::black_box(blake3::hash(chunk));
        })
    });
    let compress_ms = median_ms(repeat, || {
        timed_parallel(&chunks, threads, |chunk| {
            std::hint::black_box(zstd::bulk::compress(chunk, ZSTD_LEVEL).expect("zstd compresses"));
        })
    });
    let decompress_ms = median_ms(repeat, || {
        timed_parallel(&compressed, threads, |chunk| {
            std::hint::black_box(zstd::bulk::decompress(chunk, max_plain).expect("zstd decompresses"));
        })
    });
    let hash_decompress_ms = median_ms(repeat, || {
        timed_parallel(&compressed, threads, |chunk| {
            let plain = zstd::bulk::decompress(chunk, max_plain).expect("zstd decompresses");
            std::hint::black_box(blake3::hash(&plain));
        })
    });
    let hash_compress_ms = median_ms(repeat, || {
        timed_parallel(&chunks, threads, |chunk| {
            std::hint::black_box(blake3::hash(chunk));
            std::hint::black_box(zstd::bulk::compress(chunk, ZSTD_LEVEL).expect("zstd compresses"));
        })
    });
    Ok(json!({
        "threads": threads,
        "repeat": repeat,
        "chunks": chunks.len(),
        "plain_bytes": plain_bytes,
        "compressed_bytes": compressed_bytes,
        "hash_only_scan_ms": hash_only_scan_ms,
        "blake3_ms": hash_ms,
        "zstd_compress_ms": compress_ms,
        "zstd_decompress_ms": decompress_ms,
        "blake3_zstd_compress_ms": hash_compress_ms,
        "blake3_zstd_decompress_ms": hash_decompress_ms,
    }))
}
