//! Test support for d1snap's S3 and R2 backend: an S3 server (s3s with s3s-fs, in process)
//! and a fault-injecting proxy in front of it, both listening on 127.0.0.1 only. Each one
//! runs on its own tokio runtime and stops when dropped.
//!
//! The proxy plays R2's dialect: it rejects `aws-chunked` uploads, unsigned payloads,
//! uploads without a Content-Length, `x-amz-checksum-*` headers, and multipart uploads
//! whose parts differ in size except the last, and returns NoSuchBucket for any bucket but
//! `BUCKET`. It counts concurrent part uploads. For a
//! share of requests it answers 500, 503 or 429, resets the connection before or after
//! forwarding, answers 200 with an S3 error body, or stalls.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// Credentials the test server accepts. They exist only inside the tests.
pub const ACCESS_KEY_ID: &str = "d1snap-test-access-key";
pub const SECRET_ACCESS_KEY: &str = "d1snap-test-secret-access-key-0123456789";
/// The bucket the server creates at start.
pub const BUCKET: &str = "d1snap-test";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime for a test server")
}

/// Binds a listener on 127.0.0.1 at a free port.
fn bind(runtime: &Runtime) -> (TcpListener, SocketAddr) {
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    (listener, addr)
}

/// An S3 server over a temporary directory: bucket `BUCKET` is the folder `root()/BUCKET`,
/// and each object a file under it named by its key.
pub struct S3TestServer {
    addr: SocketAddr,
    root: PathBuf,
    _dir: Option<tempfile::TempDir>,
    runtime: Option<Runtime>,
}

impl S3TestServer {
    /// Starts a server over a new temporary directory.
    pub fn start() -> S3TestServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let root = dir.path().to_path_buf();
        let mut server = S3TestServer::start_in(&root);
        server._dir = Some(dir);
        server
    }

    /// Starts a server over `root`, which must exist; the caller keeps it.
    pub fn start_in(root: &Path) -> S3TestServer {
        std::fs::create_dir_all(root.join(BUCKET)).expect("bucket folder");
        let runtime = runtime();
        let (listener, addr) = bind(&runtime);
        let fs = s3s_fs::FileSystem::new(root).expect("s3s-fs over the root folder");
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY_ID, SECRET_ACCESS_KEY));
        let service = builder.build();
        runtime.spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else { continue };
                let service = service.clone();
                tokio::spawn(async move {
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(socket), service).await;
                });
            }
        });
        S3TestServer { addr, root: root.to_path_buf(), _dir: None, runtime: Some(runtime) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns the endpoint URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Returns the folder that contains the bucket's objects.
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.join(BUCKET)
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The faults a proxy injects, each picked with equal chance for a faulty request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    InternalError500,
    SlowDown503,
    TooManyRequests429,
    /// The connection is reset before the request reaches the server.
    ResetBeforeForward,
    /// The request reaches the server, then the connection is reset in place of the response.
    ResetAfterForward,
    /// A 200 response whose body is an S3 `<Error>` document. The request never reaches the server.
    ErrorIn200,
    /// The request hangs for `FaultPlan::stall`, then the connection is reset.
    Stall,
}

pub const ALL_FAULTS: [Fault; 7] = [
    Fault::InternalError500,
    Fault::SlowDown503,
    Fault::TooManyRequests429,
    Fault::ResetBeforeForward,
    Fault::ResetAfterForward,
    Fault::ErrorIn200,
    Fault::Stall,
];

#[derive(Clone, Debug)]
pub struct FaultPlan {
    /// Share of requests that get a fault, from 0.0 to 1.0.
    pub share: f64,
    pub faults: Vec<Fault>,
    /// Seed of the random choice, so a failing run can be repeated.
    pub seed: u64,
    /// How long a stalled request hangs; keep it above the client's attempt timeout.
    pub stall: Duration,
    /// Maximum stalls over the proxy's life, because each one costs a client timeout.
    pub max_stalls: u64,
}

impl FaultPlan {
    /// No faults: the proxy only checks the dialect and counts.
    pub fn none() -> FaultPlan {
        FaultPlan { share: 0.0, faults: Vec::new(), seed: 1, stall: Duration::from_secs(3), max_stalls: 0 }
    }

    /// Every fault kind for `share` of the requests.
    pub fn all(share: f64, seed: u64) -> FaultPlan {
        FaultPlan { share, faults: ALL_FAULTS.to_vec(), seed, stall: Duration::from_secs(3), max_stalls: 3 }
    }
}

/// What a proxy saw.
#[derive(Debug, Default)]
pub struct ProxyStats {
    pub requests: AtomicU64,
    pub faults: AtomicU64,
    /// Requests rejected for breaking R2's dialect; `dialect_errors` says why.
    pub dialect_rejections: AtomicU64,
    pub part_uploads: AtomicU64,
    pub max_concurrent_part_uploads: AtomicU64,
    concurrent_part_uploads: AtomicU64,
    pub dialect_errors: Mutex<Vec<String>>,
    pub fault_counts: Mutex<HashMap<String, u64>>,
    /// Sizes of the parts of each multipart upload, by upload id and part number.
    part_sizes: Mutex<HashMap<String, Vec<(u32, u64)>>>,
}

impl ProxyStats {
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn faults(&self) -> u64 {
        self.faults.load(Ordering::Relaxed)
    }

    pub fn dialect_rejections(&self) -> u64 {
        self.dialect_rejections.load(Ordering::Relaxed)
    }

    pub fn max_concurrent_part_uploads(&self) -> u64 {
        self.max_concurrent_part_uploads.load(Ordering::Relaxed)
    }

    pub fn part_uploads(&self) -> u64 {
        self.part_uploads.load(Ordering::Relaxed)
    }

    fn reject(&self, reason: String) -> Response<Full<Bytes>> {
        self.dialect_rejections.fetch_add(1, Ordering::Relaxed);
        let body = error_body("InvalidRequest", &reason);
        self.dialect_errors.lock().unwrap().push(reason);
        xml_response(StatusCode::BAD_REQUEST, body)
    }
}

/// A proxy on 127.0.0.1 that forwards to `upstream`, injecting faults by a plan.
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    stats: Arc<ProxyStats>,
    runtime: Option<Runtime>,
}

struct ProxyState {
    upstream: SocketAddr,
    plan: FaultPlan,
    random: Mutex<fastrand::Rng>,
    stalls: AtomicU64,
    stats: Arc<ProxyStats>,
}

impl FaultProxy {
    pub fn start(upstream: SocketAddr, plan: FaultPlan) -> FaultProxy {
        let runtime = runtime();
        let (listener, addr) = bind(&runtime);
        let stats = Arc::new(ProxyStats::default());
        let state = Arc::new(ProxyState {
            upstream,
            random: Mutex::new(fastrand::Rng::with_seed(plan.seed)),
            plan,
            stalls: AtomicU64::new(0),
            stats: stats.clone(),
        });
        runtime.spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else { continue };
                // Closing a socket with a zero linger sends a TCP reset, which is how the
                // reset faults reach the client.
                let _ = socket.set_zero_linger();
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| handle(state.clone(), request));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(socket), service).await;
                });
            }
        });
        FaultProxy { addr, upstream, stats, runtime: Some(runtime) }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address requests are forwarded to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    pub fn stats(&self) -> &ProxyStats {
        &self.stats
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn error_body(code: &str, message: &str) -> String {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>")
}

fn xml_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(Full::new(Bytes::from(body)))
        .expect("valid response")
}

fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| pair.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
}

/// Checks a request against R2's dialect and returns why it breaks it.
fn dialect_error(request: &Request<Incoming>) -> Option<String> {
    let headers = request.headers();
    for name in headers.keys() {
        let name = name.as_str();
        if name.starts_with("x-amz-checksum-") || name == "x-amz-sdk-checksum-algorithm" || name == "x-amz-trailer" {
            return Some(format!("header {name} is not accepted"));
        }
    }
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    if text("content-encoding").contains("aws-chunked") {
        return Some("content encoding aws-chunked is not accepted".into());
    }
    let payload = text("x-amz-content-sha256");
    if payload.starts_with("STREAMING-") || payload == "UNSIGNED-PAYLOAD" {
        return Some(format!("payload {payload} is not accepted; sign the payload"));
    }
    if request.method() == hyper::Method::PUT && !headers.contains_key("content-length") {
        return Some("an upload without Content-Length is not accepted".into());
    }
    None
}

async fn handle(state: Arc<ProxyState>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, BoxError> {
    let stats = &state.stats;
    stats.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(reason) = dialect_error(&request) {
        return Ok(stats.reject(reason));
    }
    // s3s-fs creates a bucket folder on the first upload; R2 and S3 answer NoSuchBucket.
    let bucket = request.uri().path().trim_start_matches('/').split('/').next().unwrap_or_default().to_string();
    if bucket != BUCKET {
        return Ok(xml_response(StatusCode::NOT_FOUND, error_body("NoSuchBucket", &format!("bucket {bucket} does not exist"))));
    }
    let query = request.uri().query().unwrap_or_default().to_string();
    let part = match (request.method(), query_value(&query, "partNumber"), query_value(&query, "uploadId")) {
        (&hyper::Method::PUT, Some(number), Some(upload)) => Some((upload.to_string(), number.parse::<u32>().unwrap_or(0))),
        _ => None,
    };
    let completing = request.method() == hyper::Method::POST && query_value(&query, "uploadId").is_some();
    if completing && let Some(reason) = unequal_parts(stats, query_value(&query, "uploadId").unwrap_or_default()) {
        return Ok(stats.reject(reason));
    }

    let fault = pick_fault(&state, request.method() == hyper::Method::HEAD);
    let _part_guard = part.as_ref().map(|_| PartGuard::enter(stats));
    serve(&state, request, fault, part).await
}

/// Returns why the parts of an upload differ in size, except the last.
fn unequal_parts(stats: &ProxyStats, upload: &str) -> Option<String> {
    let mut sizes = stats.part_sizes.lock().unwrap().get(upload).cloned().unwrap_or_default();
    sizes.sort();
    sizes.dedup_by_key(|(number, _)| *number);
    let (_, first) = *sizes.first()?;
    let body = &sizes[..sizes.len() - 1];
    let last = sizes.last().map_or(0, |(_, size)| *size);
    if body.iter().any(|(_, size)| *size != first) || last > first {
        return Some(format!("parts of upload {upload} differ in size: {sizes:?}"));
    }
    None
}

fn pick_fault(state: &ProxyState, head: bool) -> Option<Fault> {
    let plan = &state.plan;
    if plan.faults.is_empty() {
        return None;
    }
    let mut random = state.random.lock().unwrap();
    if random.f64() >= plan.share {
        return None;
    }
    let mut fault = plan.faults[random.usize(..plan.faults.len())];
    if fault == Fault::Stall && state.stalls.fetch_add(1, Ordering::Relaxed) >= plan.max_stalls {
        fault = Fault::InternalError500;
    }
    // A HEAD response has no body to carry an error document.
    if head && fault == Fault::ErrorIn200 {
        fault = Fault::SlowDown503;
    }
    state.stats.faults.fetch_add(1, Ordering::Relaxed);
    *state.stats.fault_counts.lock().unwrap().entry(format!("{fault:?}")).or_default() += 1;
    Some(fault)
}

/// Counts a part upload in flight for as long as it lives.
struct PartGuard<'a>(&'a ProxyStats);

impl<'a> PartGuard<'a> {
    fn enter(stats: &'a ProxyStats) -> PartGuard<'a> {
        stats.part_uploads.fetch_add(1, Ordering::Relaxed);
        let now = stats.concurrent_part_uploads.fetch_add(1, Ordering::SeqCst) + 1;
        stats.max_concurrent_part_uploads.fetch_max(now, Ordering::SeqCst);
        PartGuard(stats)
    }
}

impl Drop for PartGuard<'_> {
    fn drop(&mut self) {
        self.0.concurrent_part_uploads.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve(
    state: &ProxyState,
    request: Request<Incoming>,
    fault: Option<Fault>,
    part: Option<(String, u32)>,
) -> Result<Response<Full<Bytes>>, BoxError> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    match fault {
        Some(Fault::InternalError500) => {
            return Ok(xml_response(StatusCode::INTERNAL_SERVER_ERROR, error_body("InternalError", "injected fault")));
        }
        Some(Fault::SlowDown503) => return Ok(xml_response(StatusCode::SERVICE_UNAVAILABLE, error_body("SlowDown", "injected fault"))),
        Some(Fault::TooManyRequests429) => {
            return Ok(xml_response(StatusCode::TOO_MANY_REQUESTS, error_body("TooManyRequests", "injected fault")));
        }
        Some(Fault::ResetBeforeForward) => return Err("injected reset".into()),
        Some(Fault::ErrorIn200) => return Ok(xml_response(StatusCode::OK, error_body("InternalError", "injected fault"))),
        Some(Fault::Stall) => {
            tokio::time::sleep(state.plan.stall).await;
            return Err("injected stall".into());
        }
        Some(Fault::ResetAfterForward) | None => {}
    }

    let mut forward = Request::builder().method(parts.method.clone()).uri(parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    for (name, value) in &parts.headers {
        if name != "expect" && name != "connection" {
            forward = forward.header(name, value);
        }
    }
    let forward = forward.body(Full::new(body.clone()))?;
    let stream = TcpStream::connect(state.upstream).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let response = sender.send_request(forward).await?;
    let (response_parts, response_body) = response.into_parts();
    let response_body = response_body.collect().await?.to_bytes();

    if let Some((upload, number)) = part
        && response_parts.status.is_success()
    {
        state.stats.part_sizes.lock().unwrap().entry(upload).or_default().push((number, body.len() as u64));
    }
    if fault == Some(Fault::ResetAfterForward) {
        return Err("injected reset after forwarding".into());
    }
    let mut answer = Response::builder().status(response_parts.status);
    for (name, value) in &response_parts.headers {
        if name != "transfer-encoding" && name != "connection" {
            answer = answer.header(name, value);
        }
    }
    Ok(answer.body(Full::new(response_body))?)
}

