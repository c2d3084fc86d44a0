//! Runs the test S3 server, and a fault proxy in front of it, until standard input closes:
//! for measuring d1snap's requests by hand. Listens on 127.0.0.1 only.
//!
//! Usage: d1snap-s3-test-server [FAULT_SHARE]   (FAULT_SHARE from 0.0 to 1.0, default 0.0)

use std::io::Read;

use d1snap_s3_test_server::{ACCESS_KEY_ID, BUCKET, FaultPlan, FaultProxy, S3TestServer};

fn main() {
    let share: f64 = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 0.0,
        Some(Ok(share)) if (0.0..=1.0).contains(&share) => share,
        Some(_) => {
            eprintln!("error: FAULT_SHARE must be a number from 0.0 to 1.0");
            std::process::exit(2);
        }
    };
    let server = S3TestServer::start();
    let plan = if share > 0.0 { FaultPlan::all(share, 1) } else { FaultPlan::none() };
    let proxy = FaultProxy::start(server.addr(), plan);
    println!("server {}", server.endpoint());
    println!("proxy {}", proxy.endpoint());
    println!("bucket {BUCKET}, access key id {ACCESS_KEY_ID}; the secret is SECRET_ACCESS_KEY in the crate");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    let stats = proxy.stats();
    eprintln!(
        "proxy saw {} requests, injected {} faults {:?}, rejected {} for R2's dialect, at most {} part uploads at once",
        stats.requests(),
        stats.faults(),
        stats.fault_counts.lock().unwrap(),
        stats.dialect_rejections(),
        stats.max_concurrent_part_uploads()
    );
}
