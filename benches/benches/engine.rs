//! Micro benchmarks of the engine's hot paths: the row encoder, the chunk boundary test and
//! the per-chunk hashing and compression. Run them with `cargo bench` in this folder, and
//! criterion prints each median with its confidence interval. None of them is a test.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use d1snap_engine::chunker::{self, ChunkerParams};
use d1snap_engine::encode;
use d1snap_engine::object::chunk::ChunkBuilder;
use d1snap_engine::value::{Value, ValueRef};

/// Size of a typical chunk: the default chunker parameters average about 64 KiB.
const CHUNK_BYTES: usize = 64 * 1024;

/// Builds audit-log rows like the generator's: user id, action, time and a JSON payload whose
/// request id, address, status and duration vary from row to row. A chunk of one repeated row
/// would compress several times faster than real data.
fn audit_rows(count: i64) -> Vec<Vec<Value>> {
    (1..=count)
        .map(|rowid| {
            let mix = chunker::rowid_hash(rowid);
            let payload = format!(
                r#"{{"request_id":"{mix:016x}","ip":"198.51.100.{}","method":"PATCH","path":"/api/v1/projects/{}","status":{},"duration_ms":{}}}"#,
                mix % 254 + 1,
                (mix >> 8) % 100_000,
                [200, 201, 204, 400, 401][((mix >> 24) % 5) as usize],
                (mix >> 32) % 900 + 3,
            );
            vec![
                Value::Integer(((mix >> 40) % 50_000) as i64),
                Value::Text(b"project.update".to_vec()),
                Value::Integer(1_704_067_200_000 + rowid * 2_000),
                Value::Text(payload.into_bytes()),
            ]
        })
        .collect()
}

/// Builds a plain chunk of about `CHUNK_BYTES` of audit-log rows in the canonical encoding.
fn audit_chunk() -> Vec<u8> {
    let defaults = vec![Value::Null; 4];
    let mut builder = ChunkBuilder::default();
    for (index, row) in audit_rows(1_000).iter().enumerate() {
        let values: Vec<ValueRef<'_>> = row.iter().map(Value::as_ref).collect();
        builder.push_row(Some(index as i64 + 1), &values, &defaults);
        if builder.byte_len() >= CHUNK_BYTES {
            break;
        }
    }
    builder.take().0
}

fn bench_encoder(c: &mut Criterion) {
    let defaults = vec![Value::Null; 4];
    let owned = audit_rows(256);
    let rows: Vec<Vec<ValueRef<'_>>> = owned.iter().map(|row| row.iter().map(Value::as_ref).collect()).collect();
    let mut buf = Vec::with_capacity(CHUNK_BYTES * 2);
    for (index, row) in rows.iter().enumerate() {
        encode::put_row(&mut buf, Some(index as i64 + 1), row, &defaults);
    }

    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Bytes(buf.len() as u64));
    group.bench_function("put_row/audit_log x256", |b| {
        b.iter(|| {
            buf.clear();
            for (index, row) in rows.iter().enumerate() {
                encode::put_row(&mut buf, Some(index as i64 + 1), black_box(row), &defaults);
            }
            black_box(buf.len())
        })
    });
    group.finish();
}

fn bench_chunker(c: &mut Criterion) {
    let params = ChunkerParams::default();
    let keys: Vec<Vec<u8>> = (0..1024u32).map(|i| format!("user-{i:08}@example.com").into_bytes()).collect();

    let mut group = c.benchmark_group("chunker");
    group.throughput(Throughput::Elements(1024));
    group.bench_function("rowid_hash x1024", |b| {
        b.iter(|| (0..1024i64).fold(0u64, |acc, rowid| acc ^ chunker::rowid_hash(black_box(rowid))))
    });
    group.bench_function("key_hash/text key x1024", |b| {
        b.iter(|| keys.iter().fold(0u64, |acc, key| acc ^ chunker::key_hash(black_box(key))))
    });
    group.bench_function("is_boundary x1024", |b| {
        b.iter(|| {
            let mut chunk_bytes = 0usize;
            let mut boundaries = 0u32;
            for rowid in 0..1024i64 {
                chunk_bytes += 200;
                if params.is_boundary(black_box(chunk_bytes), 200, chunker::rowid_hash(rowid)) {
                    boundaries += 1;
                    chunk_bytes = 0;
                }
            }
            boundaries
        })
    });
    group.finish();
}

fn bench_hashing(c: &mut Criterion) {
    let chunk = audit_chunk();
    let compressed = zstd::bulk::compress(&chunk, 3).expect("zstd compresses");

    let mut group = c.benchmark_group("chunk 64 KiB");
    group.throughput(Throughput::Bytes(chunk.len() as u64));
    group.bench_function("blake3", |b| b.iter(|| blake3::hash(black_box(&chunk))));
    for level in [1, 3] {
        group.bench_with_input(BenchmarkId::new("zstd compress", level), &level, |b, &level| {
            b.iter(|| zstd::bulk::compress(black_box(&chunk), level).expect("zstd compresses"))
        });
    }
    group.bench_function("zstd decompress", |b| {
        b.iter(|| zstd::bulk::decompress(black_box(&compressed), CHUNK_BYTES * 2).expect("zstd decompresses"))
    });
    group.bench_function("blake3 + zstd 3 (snapshot path)", |b| {
        b.iter(|| {
            let id = blake3::hash(black_box(&chunk));
            (id, zstd::bulk::compress(&chunk, 3).expect("zstd compresses"))
        })
    });
    group.bench_function("zstd decompress + blake3 (verify path)", |b| {
        b.iter(|| {
            let plain = zstd::bulk::decompress(black_box(&compressed), CHUNK_BYTES * 2).expect("zstd decompresses");
            blake3::hash(&plain)
        })
    });
    group.finish();
}

criterion_group!(benches, bench_encoder, bench_chunker, bench_hashing);
criterion_main!(benches);
