//! Repository in an S3-compatible bucket: Amazon S3, Cloudflare R2, or any store reached
//! through an endpoint URL, over aws-sdk-s3.
//!
//! The [`Store`] trait is synchronous, so the store owns a small tokio runtime and blocks on
//! it. `put` queues the upload and returns; uploads run in the background, at most
//! [`S3Options::concurrency`] requests at once, and `flush` waits for all of them and
//! reports the first failure. A snapshot record is written after a `flush`, so it is never
//! stored before the objects it names.
//!
//! R2 speaks S3 with a dialect, and the client is set up for it: region `auto`, checksums
//! only where an operation requires one (R2 has rejected the CRC32 headers that recent SDKs
//! add by default), every upload from memory with a Content-Length and a signed payload (no
//! `aws-chunked` encoding), multipart parts of one size except the last, and at most
//! [`S3Options::part_concurrency`] part uploads at once.

mod accounting;
mod retry;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use aws_config::environment::{EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider};
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::{ProfileFileCredentialsProvider, ProfileFileRegionProvider};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, ProvideCredentials, Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use self::accounting::{Accounting, ErrorIn200Response, error_document_code};
use self::retry::{Failure, backoff, classify};
use super::{RequestCounters, RequestCounts, RequestFailure, S3Flavor, S3Location, Store, StoreError};

const MIB: usize = 1024 * 1024;

/// Tuning of an [`S3Store`]. The defaults suit R2 and S3 over the internet.
#[derive(Clone, Debug)]
pub struct S3Options {
    /// Maximum requests in flight at once, uploads and downloads together.
    pub concurrency: usize,
    /// Maximum multipart part uploads in flight at once, across all objects. R2 accepts only
    /// two or three.
    pub part_concurrency: usize,
    /// Objects of at least this many bytes are uploaded in parts.
    pub multipart_threshold: usize,
    /// Size of every part but the last, in bytes. S3 and R2 reject parts under 5 MiB,
    /// except the last.
    pub part_size: usize,
    /// Attempts per request, the first included, before the request fails for good.
    pub max_attempts: u32,
    /// Backoff before the second attempt; it doubles with each further attempt.
    pub base_delay: Duration,
    /// Maximum backoff between two attempts.
    pub max_delay: Duration,
    /// Time limit of one attempt, from sending the request to the last byte of the response.
    pub attempt_timeout: Duration,
    pub connect_timeout: Duration,
    /// Maximum bytes queued for upload and not yet stored; `put` waits while more are queued.
    pub upload_buffer: usize,
}

impl Default for S3Options {
    fn default() -> S3Options {
        S3Options {
            concurrency: 16,
            part_concurrency: 2,
            multipart_threshold: 32 * MIB,
            part_size: 8 * MIB,
            max_attempts: 8,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            upload_buffer: 64 * MIB,
        }
    }
}

/// A background GET started by `prefetch`.
type Download = JoinHandle<Result<Vec<u8>, StoreError>>;

pub struct S3Store {
    shared: Arc<Shared>,
    uploads: Arc<Uploads>,
    /// Downloads started by `prefetch`, taken by the `get` of the same key.
    prefetched: Mutex<HashMap<String, Download>>,
    runtime: Runtime,
}

/// State shared by the store and its background tasks.
struct Shared {
    client: Client,
    location: S3Location,
    /// `location` as text, for messages.
    name: String,
    options: S3Options,
    requests: Semaphore,
    parts: Semaphore,
    counters: Arc<RequestCounters>,
    /// Whether a retry was already logged as a warning; later ones go to the debug log.
    retry_logged: AtomicBool,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store").field("location", &self.shared.name).finish_non_exhaustive()
    }
}

impl S3Store {
    /// Opens a bucket prefix. Credentials are resolved now, from `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY` or else from the AWS profile files, so that missing ones are
    /// reported before any request is sent. No request is sent here.
    pub fn open(location: S3Location, options: S3Options) -> Result<S3Store, StoreError> {
        let name = location.to_string();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("d1snap-s3")
            .enable_all()
            .build()
            .map_err(|source| StoreError::Io { operation: "start the I/O runtime for", key: String::new(), store: name.clone(), source })?;
        let counters = Arc::new(RequestCounters::default());
        let config = runtime.block_on(client_config(&location, &name, &options, counters.clone()))?;
        let shared = Shared {
            client: Client::from_conf(config),
            requests: Semaphore::new(options.concurrency.max(1)),
            parts: Semaphore::new(options.part_concurrency.max(1)),
            location,
            name,
            options,
            counters,
            retry_logged: AtomicBool::new(false),
        };
        Ok(S3Store {
            shared: Arc::new(shared),
            uploads: Arc::new(Uploads::default()),
            prefetched: Mutex::new(HashMap::new()),
            runtime,
        })
    }

    pub fn options(&self) -> &S3Options {
        &self.shared.options
    }
}

/// Builds the client configuration: region, credentials, endpoint and R2's dialect. Only
/// environment variables and profile files are read: no instance metadata service is asked.
async fn client_config(
    location: &S3Location,
    name: &str,
    options: &S3Options,
    counters: Arc<RequestCounters>,
) -> Result<aws_sdk_s3::Config, StoreError> {
    let region = match location.flavor {
        S3Flavor::R2 => Region::new("auto"),
        S3Flavor::S3 => {
            let chain = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new()).or_else(ProfileFileRegionProvider::new());
            match chain.region().await {
                Some(region) => region,
                // S3-compatible stores mostly ignore the region, but SigV4 signs one.
                None if location.endpoint.is_some() => Region::new("us-east-1"),
                None => {
                    return Err(StoreError::Invalid(format!(
                        "no AWS region for {name}: set AWS_REGION, or a region in the AWS profile"
                    )));
                }
            }
        }
    };

    let credentials = CredentialsProviderChain::first_try("Environment", EnvironmentVariableCredentialsProvider::new())
        .or_else("Profile", ProfileFileCredentialsProvider::builder().build());
    if let Err(error) = credentials.provide_credentials().await {
        let for_r2 = if location.flavor == S3Flavor::R2 { " (for R2: the Access Key ID and Secret Access Key of an R2 API token)" } else { "" };
        return Err(StoreError::Invalid(format!(
            "no credentials for {name}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY{for_r2}, or AWS_PROFILE naming a profile in ~/.aws/credentials ({})",
            DisplayErrorContext(&error)
        )));
    }

    let mut builder = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(region)
        .credentials_provider(credentials)
        // Retries are d1snap's own, so that every attempt is counted and a response body
        // that fails half-way is retried as well.
        .retry_config(RetryConfig::disabled())
        .timeout_config(TimeoutConfig::builder().connect_timeout(options.connect_timeout).build())
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .interceptor(Accounting { counters });
    if let Some(endpoint) = &location.endpoint {
        // Path-style requests (`https://host/bucket/key`) work on R2 and on S3-compatible
        // servers that have no wildcard DNS for bucket names.
        builder = builder.endpoint_url(endpoint).force_path_style(true);
    }
    Ok(builder.build())
}

impl Shared {
    /// Runs `call` until it succeeds, fails for good, or uses up `max_attempts`, waiting
    /// with exponential backoff and jitter between attempts.
    async fn with_retries<T, F, Fut>(&self, operation: &'static str, key: &str, mut call: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = {
                let _slot = self.requests.acquire().await.expect("the request semaphore is never closed");
                match tokio::time::timeout(self.options.attempt_timeout, call()).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(Failure::Transient(format!(
                        "no complete response within {} s",
                        self.options.attempt_timeout.as_secs_f64()
                    ))),
                }
            };
            let failure = match outcome {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            let cause = match failure {
                Failure::Transient(cause) => cause,
                Failure::NotFound => return Err(StoreError::NotFound { key: key.to_string(), store: self.name.clone() }),
                Failure::NoSuchBucket => {
                    let endpoint = self.location.endpoint.clone().unwrap_or_else(|| "Amazon S3".to_string());
                    return Err(StoreError::BucketNotFound { bucket: self.location.bucket.clone(), endpoint });
                }
                Failure::Permanent(cause) => return Err(self.failure(operation, key, attempt, cause, false)),
            };
            if attempt >= self.options.max_attempts {
                return Err(self.failure(operation, key, attempt, cause, true));
            }
            self.counters.retried();
            let delay = backoff(attempt, self.options.base_delay, self.options.max_delay);
            if self.retry_logged.swap(true, Ordering::Relaxed) {
                tracing::debug!(operation, key, attempt, cause, ?delay, "retrying a request");
            } else {
                tracing::warn!(
                    operation,
                    key,
                    attempt,
                    cause,
                    ?delay,
                    "retrying a request; later retries are logged at debug level and counted in the summary"
                );
            }
            tokio::time::sleep(delay).await;
        }
    }

    fn failure(&self, operation: &'static str, key: &str, attempts: u32, cause: String, transient: bool) -> StoreError {
        StoreError::Request(RequestFailure { operation, key: key.to_string(), store: self.name.clone(), attempts, cause, transient })
    }

    async fn put_object(self: &Arc<Self>, key: &str, data: Bytes) -> Result<(), StoreError> {
        if data.len() >= self.options.multipart_threshold {
            return self.put_multipart(key, data).await;
        }
        let object_key = self.location.object_key(key);
        self.with_retries("PUT", key, || {
            let request = self
                .client
                .put_object()
                .bucket(&self.location.bucket)
                .key(&object_key)
                .content_type("application/octet-stream")
                .content_length(data.len() as i64)
                .body(ByteStream::from(data.clone()));
            async move { request.send().await.map(|_| ()).map_err(|e| classify(&e)) }
        })
        .await
    }

    /// Uploads `data` in parts of `part_size` bytes (the last one shorter), at most
    /// `part_concurrency` parts at once across the store, and aborts the upload on failure.
    async fn put_multipart(self: &Arc<Self>, key: &str, data: Bytes) -> Result<(), StoreError> {
        let object_key = self.location.object_key(key);
        let upload_id = self
            .with_retries("PUT (create multipart upload)", key, || {
                let request = self
                    .client
                    .create_multipart_upload()
                    .bucket(&self.location.bucket)
                    .key(&object_key)
                    .content_type("application/octet-stream");
                async move {
                    let output = request.send().await.map_err(|e| classify(&e))?;
                    output.upload_id.ok_or_else(|| Failure::Transient("the response carried no upload id".into()))
                }
            })
            .await?;

        let parts = self.upload_parts(key, &object_key, &upload_id, &data).await;
        let parts = match parts {
            Ok(parts) => parts,
            Err(error) => {
                self.abort_multipart(key, &object_key, &upload_id).await;
                return Err(error);
            }
        };

        let completed = CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
        let result = self
            .with_retries("PUT (complete multipart upload)", key, || {
                let request = self
                    .client
                    .complete_multipart_upload()
                    .bucket(&self.location.bucket)
                    .key(&object_key)
                    .upload_id(&upload_id)
                    .multipart_upload(completed.clone());
                async move { request.send().await.map(|_| ()).map_err(|e| classify(&e)) }
            })
            .await;
        match result {
            // An earlier attempt completed the upload but its response was lost, so the
            // upload id is gone: the object itself, at its full size, is the proof.
            Err(StoreError::NotFound { .. }) if self.object_size(key).await? == Some(data.len() as u64) => Ok(()),
            Err(error) => {
                self.abort_multipart(key, &object_key, &upload_id).await;
                Err(error)
            }
            Ok(()) => Ok(()),
        }
    }

    async fn upload_parts(self: &Arc<Self>, key: &str, object_key: &str, upload_id: &str, data: &Bytes) -> Result<Vec<CompletedPart>, StoreError> {
        let part_size = self.options.part_size.max(1);
        let mut tasks = tokio::task::JoinSet::new();
        for (index, start) in (0..data.len()).step_by(part_size).enumerate() {
            let part = data.slice(start..(start + part_size).min(data.len()));
            let number = i32::try_from(index + 1).map_err(|_| StoreError::Invalid(format!("{key} needs more than 10,000 parts; raise the part size")))?;
            let (shared, key, object_key, upload_id) = (self.clone(), key.to_string(), object_key.to_string(), upload_id.to_string());
            tasks.spawn(async move {
                let _slot = shared.parts.acquire().await.expect("the part semaphore is never closed");
                let e_tag = shared
                    .with_retries("PUT (upload part)", &key, || {
                        let request = shared
                            .client
                            .upload_part()
                            .bucket(&shared.location.bucket)
                            .key(&object_key)
                            .upload_id(&upload_id)
                            .part_number(number)
                            .content_length(part.len() as i64)
                            .body(ByteStream::from(part.clone()));
                        async move {
                            let output = request.send().await.map_err(|e| classify(&e))?;
                            output.e_tag.ok_or_else(|| Failure::Transient("the response carried no ETag".into()))
                        }
                    })
                    .await?;
                Ok::<_, StoreError>(CompletedPart::builder().part_number(number).e_tag(e_tag).build())
            });
        }
        let mut parts = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let part = joined.map_err(|e| StoreError::Invalid(format!("a part upload of {key} stopped: {e}")))??;
            parts.push(part);
        }
        parts.sort_by_key(|p| p.part_number);
        Ok(parts)
    }

    /// Frees the parts of a failed upload. Best effort: a leftover upload costs storage
    /// until the bucket's lifecycle rule removes it, never correctness.
    async fn abort_multipart(&self, key: &str, object_key: &str, upload_id: &str) {
        let result = self
            .with_retries("DELETE (abort multipart upload)", key, || {
                let request = self.client.abort_multipart_upload().bucket(&self.location.bucket).key(object_key).upload_id(upload_id);
                async move { request.send().await.map(|_| ()).map_err(|e| classify(&e)) }
            })
            .await;
        if let Err(error) = result {
            tracing::warn!(key, %error, "could not abort a failed multipart upload; its parts stay until a lifecycle rule removes them");
        }
    }

    async fn get_object(&self, key: &str, range: Option<(u64, u64)>) -> Result<Vec<u8>, StoreError> {
        let object_key = self.location.object_key(key);
        let range = range.map(|(offset, length)| format!("bytes={offset}-{}", offset + length.max(1) - 1));
        self.with_retries("GET", key, || {
            let request = self.client.get_object().bucket(&self.location.bucket).key(&object_key).set_range(range.clone());
            let counters = self.counters.clone();
            async move {
                let output = request.send().await.map_err(|e| classify(&e))?;
                let xml = output.content_type().is_some_and(|t| t.contains("xml"));
                let body = output.body.collect().await.map_err(|e| {
                    Failure::Transient(format!("reading the response body failed: {}", DisplayErrorContext(&e)))
                })?;
                let bytes = body.into_bytes();
                counters.received(bytes.len() as u64);
                // Objects are stored as application/octet-stream, so an XML error document
                // here came from the server, not from the object.
                if xml && let Some(code) = error_document_code(&bytes) {
                    return Err(Failure::Transient(ErrorIn200Response { code }.to_string()));
                }
                Ok(bytes.to_vec())
            }
        })
        .await
    }

    /// Returns the size of an object, or `None` when it does not exist.
    async fn object_size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let object_key = self.location.object_key(key);
        let result = self
            .with_retries("HEAD", key, || {
                let request = self.client.head_object().bucket(&self.location.bucket).key(&object_key);
                async move {
                    let output = request.send().await.map_err(|e| classify(&e))?;
                    Ok(output.content_length.unwrap_or(0).max(0) as u64)
                }
            })
            .await;
        match result {
            Ok(size) => Ok(Some(size)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Lists every key under `prefix`, with one LIST request per 1,000 keys.
    async fn list_keys(&self, prefix: &str, limit: Option<i32>) -> Result<Vec<String>, StoreError> {
        let full_prefix = self.location.object_key(prefix);
        let strip = if self.location.prefix.is_empty() { 0 } else { self.location.prefix.len() + 1 };
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .with_retries("LIST", prefix, || {
                    let request = self
                        .client
                        .list_objects_v2()
                        .bucket(&self.location.bucket)
                        .prefix(&full_prefix)
                        .set_max_keys(limit)
                        .set_continuation_token(token.clone());
                    async move { request.send().await.map_err(|e| classify(&e)) }
                })
                .await?;
            keys.extend(page.contents().iter().filter_map(|object| object.key()).filter_map(|key| key.get(strip..)).map(str::to_string));
            token = page.next_continuation_token.filter(|_| page.is_truncated == Some(true));
            if token.is_none() || limit.is_some() {
                return Ok(keys);
            }
        }
    }

    async fn delete_object(&self, key: &str) -> Result<(), StoreError> {
        let object_key = self.location.object_key(key);
        let result = self
            .with_retries("DELETE", key, || {
                let request = self.client.delete_object().bucket(&self.location.bucket).key(&object_key);
                async move { request.send().await.map(|_| ()).map_err(|e| classify(&e)) }
            })
            .await;
        match result {
            Err(StoreError::NotFound { .. }) => Ok(()),
            other => other,
        }
    }
}

/// Uploads queued by `put` and not yet finished, with the first failure among them.
#[derive(Default)]
struct Uploads {
    state: Mutex<UploadState>,
    changed: Condvar,
}

#[derive(Default)]
struct UploadState {
    queued: Vec<(u64, String, Bytes)>,
    bytes: usize,
    next_ticket: u64,
    failure: Option<StoreError>,
}

impl Uploads {
    /// Queues an upload, waiting while the queue contains `limit` bytes or more, and returns its
    /// ticket. Fails at once when an earlier upload failed, so a snapshot stops early.
    fn enqueue(&self, key: &str, data: Bytes, limit: usize) -> Result<u64, StoreError> {
        let mut state = self.state.lock().expect("upload state lock");
        loop {
            if let Some(failure) = &state.failure {
                return Err(repeat(failure));
            }
            if state.queued.is_empty() || state.bytes + data.len() <= limit {
                break;
            }
            state = self.changed.wait(state).expect("upload state lock");
        }
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.bytes += data.len();
        state.queued.push((ticket, key.to_string(), data));
        Ok(ticket)
    }

    fn finish(&self, ticket: u64, failure: Option<StoreError>) {
        let mut state = self.state.lock().expect("upload state lock");
        if let Some(position) = state.queued.iter().position(|(t, _, _)| *t == ticket) {
            let (_, _, data) = state.queued.swap_remove(position);
            state.bytes -= data.len();
        }
        if state.failure.is_none() {
            state.failure = failure;
        }
        self.changed.notify_all();
    }

    /// Returns the bytes of a queued upload of `key`, so that a read returns an earlier write.
    fn queued(&self, key: &str) -> Option<Bytes> {
        let state = self.state.lock().expect("upload state lock");
        state.queued.iter().rev().find(|(_, k, _)| k == key).map(|(_, _, data)| data.clone())
    }

    /// Waits until every queued upload has finished and returns the first failure.
    fn wait(&self) -> Result<(), StoreError> {
        let mut state = self.state.lock().expect("upload state lock");
        while !state.queued.is_empty() {
            state = self.changed.wait(state).expect("upload state lock");
        }
        match state.failure.take() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }
}

/// Copies an upload failure for the callers after the first.
fn repeat(error: &StoreError) -> StoreError {
    match error {
        StoreError::Request(failure) => StoreError::Request(failure.clone()),
        StoreError::BucketNotFound { bucket, endpoint } => StoreError::BucketNotFound { bucket: bucket.clone(), endpoint: endpoint.clone() },
        other => StoreError::Invalid(other.to_string()),
    }
}

impl S3Store {
    /// Reads a whole object or a range of it: from a queued upload, a prefetched download,
    /// or a GET request.
    fn read(&self, key: &str, range: Option<(u64, u64)>) -> Result<Vec<u8>, StoreError> {
        if let Some(data) = self.uploads.queued(key) {
            let (start, end) = match range {
                Some((offset, length)) => (offset as usize, offset.saturating_add(length) as usize),
                None => (0, data.len()),
            };
            return Ok(data[start.min(data.len())..end.min(data.len())].to_vec());
        }
        // Prefetching covers whole objects only.
        let prefetched = if range.is_none() { self.prefetched.lock().expect("prefetch lock").remove(key) } else { None };
        match prefetched {
            Some(download) => self
                .runtime
                .block_on(download)
                .unwrap_or_else(|e| Err(StoreError::Invalid(format!("the download of {key} stopped: {e}")))),
            None => self.runtime.block_on(self.shared.get_object(key, range)),
        }
    }
}

impl Store for S3Store {
    fn location(&self) -> String {
        self.shared.name.clone()
    }

    fn is_initialized(&self) -> Result<bool, StoreError> {
        let keys = self.runtime.block_on(self.shared.list_keys("", Some(1)))?;
        Ok(!keys.is_empty())
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        self.read(key, None)
    }

    fn get_range(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>, StoreError> {
        self.read(key, Some((offset, length)))
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let data = Bytes::copy_from_slice(bytes);
        let ticket = self.uploads.enqueue(key, data.clone(), self.shared.options.upload_buffer)?;
        let (shared, uploads, key) = (self.shared.clone(), self.uploads.clone(), key.to_string());
        self.runtime.spawn(async move {
            let result = shared.put_object(&key, data).await;
            uploads.finish(ticket, result.err());
        });
        Ok(())
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        if self.uploads.queued(key).is_some() {
            return Ok(true);
        }
        Ok(self.runtime.block_on(self.shared.object_size(key))?.is_some())
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.runtime.block_on(self.shared.list_keys(prefix, None))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.flush()?;
        self.runtime.block_on(self.shared.delete_object(key))
    }

    /// Waits for every queued upload. A PUT that returned success is durable in S3 and R2,
    /// so nothing else needs syncing.
    fn flush(&self) -> Result<(), StoreError> {
        self.uploads.wait()
    }

    fn requests(&self) -> RequestCounts {
        self.shared.counters.counts()
    }

    fn read_ahead(&self) -> usize {
        self.shared.options.concurrency
    }

    fn prefetch(&self, key: &str) {
        let mut prefetched = self.prefetched.lock().expect("prefetch lock");
        // Unclaimed downloads are bounded so that a reader that stops early cannot pile
        // them up.
        if prefetched.contains_key(key) || prefetched.len() >= 2 * self.read_ahead() {
            return;
        }
        let (shared, owned_key) = (self.shared.clone(), key.to_string());
        let download = self.runtime.spawn(async move { shared.get_object(&owned_key, None).await });
        prefetched.insert(key.to_string(), download);
    }

    fn is_remote(&self) -> bool {
        true
    }
}
