//! An interceptor on every request of the S3 client: it counts requests by kind with their
//! body bytes, and turns a `200 OK` whose body is an S3 `<Error>` document into an error.

use std::sync::Arc;

use aws_sdk_s3::config::interceptors::{AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;

use crate::store::{RequestCounters, RequestKind};

#[derive(Debug)]
pub(super) struct Accounting {
    pub counters: Arc<RequestCounters>,
}

/// A response with status 200 whose body is an S3 error document. S3 documents this for
/// CompleteMultipartUpload and copies; a proxy or a provider under load can send it for
/// any request, and the SDK would otherwise read it as success.
#[derive(Debug, thiserror::Error)]
#[error("the response had status 200 but its body is an S3 error ({code})")]
pub(super) struct ErrorIn200Response {
    pub code: String,
}

impl Intercept for Accounting {
    fn name(&self) -> &'static str {
        "D1snapRequestAccounting"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let kind = request_kind(request.method(), request.uri());
        self.counters.request(kind, request.body().content_length().unwrap_or(0));
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response();
        // Streaming bodies (GetObject) are not loaded here; the store counts them itself.
        let Some(body) = response.body().bytes() else { return Ok(()) };
        self.counters.received(body.len() as u64);
        // An output that already failed to deserialize needs no second error.
        if response.status().as_u16() == 200
            && context.output_or_error().is_ok()
            && let Some(code) = error_document_code(body)
        {
            return Err(Box::new(ErrorIn200Response { code }));
        }
        Ok(())
    }
}

/// The billing kind of a request from its method and query string.
pub(super) fn request_kind(method: &str, uri: &str) -> RequestKind {
    let query = uri.split_once('?').map(|(_, q)| q).unwrap_or_default();
    match method {
        "GET" if query.split('&').any(|p| p.starts_with("list-type=")) => RequestKind::List,
        "GET" => RequestKind::Get,
        "HEAD" => RequestKind::Head,
        "DELETE" => RequestKind::Delete,
        _ => RequestKind::Put,
    }
}

/// Returns the `<Code>` of an S3 `<Error>` document, or `None` when `body` is something else.
pub(super) fn error_document_code(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(512)];
    let text = std::str::from_utf8(head).ok()?.trim_start();
    let text = match text.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>")?.1.trim_start(),
        None => text,
    };
    if !text.starts_with("<Error>") {
        return None;
    }
    let code = text
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code.to_string())
        .unwrap_or_else(|| "no code".to_string());
    Some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_request_is_counted_as_list() {
        assert_eq!(request_kind("GET", "http://h/b?list-type=2&prefix=p%2F"), RequestKind::List);
    }

    #[test]
    fn object_read_is_counted_as_get() {
        assert_eq!(request_kind("GET", "http://h/b/chunks/ab/ab12?x-id=GetObject"), RequestKind::Get);
    }

    #[test]
    fn multipart_complete_is_counted_as_put() {
        assert_eq!(request_kind("POST", "http://h/b/k?uploadId=1"), RequestKind::Put);
    }

    #[test]
    fn error_document_is_recognised() {
        let body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code><Message>x</Message></Error>";
        assert_eq!(error_document_code(body).as_deref(), Some("InternalError"));
    }

    #[test]
    fn object_bytes_are_not_an_error_document() {
        assert_eq!(error_document_code(b"D1SN\x01\x01\x01payload"), None);
    }
}
