//! The S3 store over real HTTP: an in-process S3 server on 127.0.0.1, reached directly or
//! through a proxy that checks R2's dialect and injects faults.

#![cfg(feature = "s3")]

use std::time::{Duration, Instant};

use d1snap_engine::store::{RepoLocation, S3Location, S3Options, S3Store, Store, StoreError};
use d1snap_s3_test_server::{ACCESS_KEY_ID, BUCKET, FaultPlan, FaultProxy, S3TestServer, SECRET_ACCESS_KEY};

const MIB: usize = 1024 * 1024;

/// Points the AWS SDK at the test credentials. Every test sets the same values, so tests
/// running at once never see each other's.
fn test_credentials() {
    // SAFETY: set_var races with threads that read the environment at the same time. Every
    // test writes the same values, so a reader finds them before or after, never torn.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY);
        std::env::remove_var("AWS_SESSION_TOKEN");
        std::env::remove_var("AWS_PROFILE");
    }
}

fn location(endpoint: &str, bucket: &str, prefix: &str) -> S3Location {
    match RepoLocation::parse(&format!("s3://{bucket}/{prefix}"), Some(endpoint), None).unwrap() {
        RepoLocation::S3(location) => location,
        RepoLocation::Local(path) => panic!("parsed as a local path: {}", path.display()),
    }
}

/// Options with fast retries, so fault tests finish in seconds.
fn fast_options() -> S3Options {
    S3Options {
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(100),
        attempt_timeout: Duration::from_secs(2),
        max_attempts: 12,
        ..S3Options::default()
    }
}

fn open(endpoint: &str, prefix: &str, options: S3Options) -> S3Store {
    test_credentials();
    S3Store::open(location(endpoint, BUCKET, prefix), options).unwrap()
}

/// Bytes that do not compress or repeat, so a corrupted part would show.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut random = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| random.u8(..)).collect()
}

#[test]
fn put_get_list_delete_round_trip() {
    let server = S3TestServer::start();
    let store = open(&server.endpoint(), "repo", S3Options::default());
    assert!(!store.is_initialized().unwrap());
    store.put("chunks/ab/abcd", b"chunk bytes").unwrap();
    store.put("snapshots/0011", b"record").unwrap();
    store.flush().unwrap();

    assert!(store.is_initialized().unwrap());
    assert_eq!(store.get("chunks/ab/abcd").unwrap(), b"chunk bytes");
    assert!(store.exists("snapshots/0011").unwrap());
    assert!(!store.exists("snapshots/0022").unwrap());
    assert_eq!(store.list("snapshots/").unwrap(), vec!["snapshots/0011".to_string()]);
    assert!(server.bucket_dir().join("repo/chunks/ab/abcd").is_file(), "the repository prefix is not a folder of the bucket");

    store.delete("snapshots/0011").unwrap();
    assert!(matches!(store.get("snapshots/0011"), Err(StoreError::NotFound { .. })));
    store.delete("snapshots/0011").unwrap();
}

#[test]
fn requests_are_counted_by_kind() {
    let server = S3TestServer::start();
    let store = open(&server.endpoint(), "counted", S3Options::default());
    store.put("tables/00/0011", &[7u8; 1000]).unwrap();
    store.flush().unwrap();
    store.get("tables/00/0011").unwrap();
    store.exists("tables/00/0022").unwrap();
    store.list("tables/").unwrap();
    store.delete("tables/00/0011").unwrap();

    let counts = store.requests();
    assert_eq!(counts.put, 1);
    assert_eq!(counts.get, 1);
    assert_eq!(counts.head, 1);
    assert_eq!(counts.list, 1);
    assert_eq!(counts.delete, 1);
    assert_eq!(counts.bytes_sent, 1000);
    assert!(counts.bytes_received >= 1000, "{counts:?}");
    assert_eq!(counts.retries, 0);
}

#[test]
fn large_object_is_uploaded_in_equal_parts() {
    let server = S3TestServer::start();
    let proxy = FaultProxy::start(server.addr(), FaultPlan::none());
    let options = S3Options { multipart_threshold: 5 * MIB, part_size: 5 * MIB, part_concurrency: 2, ..S3Options::default() };
    let store = open(&proxy.endpoint(), "multipart", options);
    let data = pseudo_random(12 * MIB + 123, 7);
    let second = pseudo_random(11 * MIB, 8);
    store.put("chunks/00/large", &data).unwrap();
    store.put("chunks/00/second", &second).unwrap();
    store.flush().unwrap();

    let stats = proxy.stats();
    assert_eq!(stats.dialect_rejections(), 0, "{:?}", stats.dialect_errors.lock().unwrap());
    assert_eq!(stats.part_uploads(), 6, "two objects of three parts each");
    assert!(stats.max_concurrent_part_uploads() <= 2, "{} part uploads at once", stats.max_concurrent_part_uploads());
    assert_eq!(store.get("chunks/00/large").unwrap(), data);
    assert_eq!(store.get("chunks/00/second").unwrap(), second);
    assert_eq!(std::fs::metadata(server.bucket_dir().join("multipart/chunks/00/large")).unwrap().len(), data.len() as u64);
}

#[test]
fn listing_spans_many_pages() {
    let server = S3TestServer::start();
    let store = open(&server.endpoint(), "paged", S3Options { concurrency: 32, ..S3Options::default() });
    let keys: Vec<String> = (0..2100).map(|i| format!("nodes/{:02x}/{i:06}", i % 256)).collect();
    for key in &keys {
        store.put(key, key.as_bytes()).unwrap();
    }
    store.flush().unwrap();
    let before = store.requests().list;

    let mut listed = store.list("nodes/").unwrap();
    listed.sort();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(listed.len(), 2100);
    assert_eq!(listed, expected);
    assert_eq!(store.requests().list - before, 3, "S3 returns at most 1,000 keys per LIST");
}

#[test]
fn faults_are_retried_until_success() {
    let server = S3TestServer::start();
    let proxy = FaultProxy::start(server.addr(), FaultPlan::all(0.25, 42));
    let store = open(&proxy.endpoint(), "faulty", fast_options());
    let started = Instant::now();
    let objects: Vec<(String, Vec<u8>)> = (0..120).map(|i| (format!("chunks/{:02x}/{i:04}", i % 16), pseudo_random(2000 + i, i as u64))).collect();
    for (key, data) in &objects {
        store.put(key, data).unwrap();
    }
    store.flush().unwrap();
    for (key, data) in &objects {
        assert_eq!(&store.get(key).unwrap(), data, "object {key}");
    }
    let mut listed = store.list("chunks/").unwrap();
    listed.sort();
    assert_eq!(listed.len(), objects.len());

    let stats = proxy.stats();
    assert!(stats.faults() > 10, "only {} faults injected", stats.faults());
    assert!(store.requests().retries > 0);
    assert_eq!(stats.dialect_rejections(), 0, "{:?}", stats.dialect_errors.lock().unwrap());
    assert!(started.elapsed() < Duration::from_secs(120), "took {:?}", started.elapsed());
}

#[test]
fn faulty_multipart_upload_completes() {
    let server = S3TestServer::start();
    let proxy = FaultProxy::start(server.addr(), FaultPlan::all(0.3, 9));
    let options = S3Options { multipart_threshold: 5 * MIB, part_size: 5 * MIB, ..fast_options() };
    let store = open(&proxy.endpoint(), "faulty-multipart", options);
    let data = pseudo_random(16 * MIB, 3);
    store.put("chunks/00/large", &data).unwrap();
    store.flush().unwrap();
    assert_eq!(store.get("chunks/00/large").unwrap(), data);
    assert!(proxy.stats().max_concurrent_part_uploads() <= 2);
}

#[test]
fn exhausted_retries_fail_flush() {
    let server = S3TestServer::start();
    let mut plan = FaultPlan::all(1.0, 5);
    plan.max_stalls = 0;
    let proxy = FaultProxy::start(server.addr(), plan);
    let store = open(&proxy.endpoint(), "failing", S3Options { max_attempts: 3, ..fast_options() });
    store.put("chunks/00/0001", b"never stored").unwrap();
    let error = store.flush().unwrap_err();
    let StoreError::Request(failure) = &error else { panic!("not a request failure: {error}") };
    assert!(failure.transient, "{error}");
    assert_eq!(failure.attempts, 3, "{error}");
    assert!(error.to_string().contains("after 3 attempts"), "{error}");
    assert!(matches!(store.put("chunks/00/0002", b"x"), Ok(())), "the failure is reported once, by flush");
}

#[test]
fn failed_upload_stops_later_puts() {
    let server = S3TestServer::start();
    let mut plan = FaultPlan::all(1.0, 6);
    plan.max_stalls = 0;
    let proxy = FaultProxy::start(server.addr(), plan);
    let store = open(&proxy.endpoint(), "stopping", S3Options { max_attempts: 2, ..fast_options() });
    store.put("chunks/00/0001", b"x").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut rejected = false;
    while Instant::now() < deadline && !rejected {
        rejected = store.put("chunks/00/0002", b"y").is_err();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(rejected, "puts kept being accepted after an upload failed");
}

#[test]
fn missing_bucket_is_reported() {
    let server = S3TestServer::start();
    let proxy = FaultProxy::start(server.addr(), FaultPlan::none());
    test_credentials();
    let store = S3Store::open(location(&proxy.endpoint(), "no-such-bucket", "repo"), S3Options::default()).unwrap();
    store.put("config", b"{}").unwrap();
    let error = store.flush().unwrap_err();
    assert!(matches!(&error, StoreError::BucketNotFound { bucket, .. } if bucket == "no-such-bucket"), "{error}");
}
