//! Classification of failed requests into those worth another attempt and the rest, and
//! the wait before the next attempt.

use std::error::Error as StdError;
use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::accounting::ErrorIn200Response;

/// The outcome of one failed attempt.
#[derive(Debug)]
pub(super) enum Failure {
    /// Throttling, a server error, a timeout, a dropped connection or a garbled response:
    /// the same request may succeed later.
    Transient(String),
    /// The object does not exist (404).
    NotFound,
    /// The bucket does not exist.
    NoSuchBucket,
    /// Anything a retry cannot fix: access denied, an invalid request.
    Permanent(String),
}

/// Classifies an SDK error. The text never holds credentials: the SDK's error messages carry
/// the status, the S3 error code and message, and the request id.
pub(super) fn classify<E>(error: &SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    if let Some(in_200) = find_source::<ErrorIn200Response>(error) {
        return Failure::Transient(in_200.to_string());
    }
    match error {
        SdkError::TimeoutError(_) => Failure::Transient("the request timed out".into()),
        SdkError::DispatchFailure(failure) if failure.is_user() => Failure::Permanent(describe(error)),
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Failure::Transient(describe(error)),
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or_default();
            let message = service.err().message().unwrap_or_default();
            let text = if code.is_empty() {
                format!("HTTP status {status}")
            } else {
                format!("HTTP status {status}, {code}: {message}")
            };
            match (status, code) {
                (404, "NoSuchBucket") => Failure::NoSuchBucket,
                (404, _) => Failure::NotFound,
                (429 | 500 | 502 | 503 | 504, _) => Failure::Transient(text),
                (_, "SlowDown" | "InternalError" | "ServiceUnavailable" | "RequestTimeout" | "Throttling" | "TooManyRequests") => {
                    Failure::Transient(text)
                }
                (403, _) => Failure::Permanent(format!(
                    "{text}; check the credentials, and that the API token may read and write objects in this bucket"
                )),
                _ => Failure::Permanent(text),
            }
        }
        _ => Failure::Permanent(describe(error)),
    }
}

fn describe(error: &dyn StdError) -> String {
    DisplayErrorContext(error).to_string()
}

fn find_source<'a, T: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// Backoff before attempt `attempt + 1`: "full jitter", a uniform random wait between zero
/// and `base * 2^(attempt - 1)` capped at `max`, so clients that failed together do not
/// retry together.
pub(super) fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let ceiling = base.saturating_mul(1 << exponent).min(max);
    ceiling.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_cap() {
        for attempt in 1..30 {
            assert!(backoff(attempt, Duration::from_millis(100), Duration::from_secs(2)) <= Duration::from_secs(2));
        }
    }

    #[test]
    fn backoff_ceiling_doubles() {
        let longest = (0..200).map(|_| backoff(3, Duration::from_millis(100), Duration::from_secs(60))).max().unwrap();
        assert!(longest <= Duration::from_millis(400), "{longest:?}");
    }
}
