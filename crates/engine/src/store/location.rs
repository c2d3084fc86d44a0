//! Repository locations: a local directory, or a bucket prefix named by an `s3://` or
//! `r2://` URL. Parsing needs no network and no credentials.

use std::fmt;
use std::path::PathBuf;

use super::StoreError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepoLocation {
    Local(PathBuf),
    S3(S3Location),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S3Flavor {
    /// Amazon S3, or any S3-compatible store given with an endpoint.
    S3,
    /// Cloudflare R2: region `auto`, endpoint `https://<account_id>.r2.cloudflarestorage.com`.
    R2,
}

/// A bucket prefix in an S3-compatible store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    pub flavor: S3Flavor,
    pub bucket: String,
    /// Key prefix of the repository without leading or trailing `/`; empty for the bucket root.
    pub prefix: String,
    /// The Cloudflare account id of an R2 location.
    pub account_id: Option<String>,
    /// Endpoint URL; `None` for Amazon S3's own endpoints.
    pub endpoint: Option<String>,
}

impl RepoLocation {
    /// Parses `--repo`: an `s3://BUCKET/PREFIX` or `r2://[ACCOUNT_ID/]BUCKET/PREFIX` URL, or
    /// else a directory path. `endpoint` is the explicit endpoint option; `account_id` is
    /// `CLOUDFLARE_ACCOUNT_ID`, used when an `r2://` URL names no account.
    pub fn parse(text: &str, endpoint: Option<&str>, account_id: Option<&str>) -> Result<RepoLocation, StoreError> {
        // An endpoint, often set for all tools through AWS_ENDPOINT_URL_S3, does not apply
        // to a local path.
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(RepoLocation::Local(PathBuf::from(text)));
        };
        let endpoint = endpoint.map(|e| check_endpoint(e).map(str::to_string)).transpose()?;
        let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        match scheme.to_ascii_lowercase().as_str() {
            "s3" => {
                let (bucket, prefix) = split_bucket(text, &segments)?;
                Ok(RepoLocation::S3(S3Location { flavor: S3Flavor::S3, bucket, prefix, account_id: None, endpoint }))
            }
            "r2" => {
                let (account, bucket_segments) = match segments.first() {
                    Some(first) if is_account_id(first) => (first.to_ascii_lowercase(), &segments[1..]),
                    _ => match account_id.filter(|id| !id.is_empty()) {
                        Some(id) if is_account_id(id) => (id.to_ascii_lowercase(), &segments[..]),
                        Some(id) => {
                            return Err(invalid(format!(
                                "CLOUDFLARE_ACCOUNT_ID {id:?} is not a Cloudflare account id (32 hex digits); copy it from the R2 page of the Cloudflare dashboard"
                            )));
                        }
                        None if endpoint.is_some() => (String::new(), &segments[..]),
                        None => {
                            return Err(invalid(format!(
                                "repository URL {text:?} names no Cloudflare account; use r2://ACCOUNT_ID/BUCKET/PREFIX or set CLOUDFLARE_ACCOUNT_ID"
                            )));
                        }
                    },
                };
                let (bucket, prefix) = split_bucket(text, bucket_segments)?;
                let endpoint = endpoint.or_else(|| Some(format!("https://{account}.r2.cloudflarestorage.com")));
                let account_id = Some(account).filter(|a| !a.is_empty());
                Ok(RepoLocation::S3(S3Location { flavor: S3Flavor::R2, bucket, prefix, account_id, endpoint }))
            }
            other => Err(invalid(format!(
                "repository URL {text:?} has the unsupported scheme {other:?}; use s3://BUCKET/PREFIX, r2://ACCOUNT_ID/BUCKET/PREFIX or a directory path"
            ))),
        }
    }
}

impl S3Location {
    /// Returns the store key of a repository key: the prefix and the key joined by `/`.
    pub fn object_key(&self, key: &str) -> String {
        if self.prefix.is_empty() { key.to_string() } else { format!("{}/{key}", self.prefix) }
    }
}

/// The URL form, safe to print: it never contains credentials, because endpoints with user
/// information are rejected.
impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.prefix.is_empty() { self.bucket.clone() } else { format!("{}/{}", self.bucket, self.prefix) };
        match (self.flavor, &self.account_id) {
            (S3Flavor::R2, Some(account)) => write!(f, "r2://{account}/{path}")?,
            (S3Flavor::R2, None) => write!(f, "r2://{path}")?,
            (S3Flavor::S3, _) => write!(f, "s3://{path}")?,
        }
        let default_r2 = self.account_id.as_ref().map(|a| format!("https://{a}.r2.cloudflarestorage.com"));
        match &self.endpoint {
            Some(endpoint) if Some(endpoint) != default_r2.as_ref() => write!(f, " at {endpoint}"),
            _ => Ok(()),
        }
    }
}

fn invalid(message: String) -> StoreError {
    StoreError::Invalid(message)
}

fn is_account_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Splits `BUCKET/PREFIX…` and checks both parts.
fn split_bucket(url: &str, segments: &[&str]) -> Result<(String, String), StoreError> {
    let Some((bucket, prefix)) = segments.split_first().filter(|(bucket, _)| !bucket.is_empty()) else {
        return Err(invalid(format!("repository URL {url:?} names no bucket; use s3://BUCKET/PREFIX or r2://ACCOUNT_ID/BUCKET/PREFIX")));
    };
    // Rules shared by S3 and R2: 3 to 63 lowercase letters, digits, dots and hyphens,
    // starting and ending with a letter or digit.
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket.as_bytes()[0].is_ascii_alphanumeric()
        && bucket.as_bytes()[bucket.len() - 1].is_ascii_alphanumeric();
    if !valid_bucket {
        return Err(invalid(format!(
            "bucket name {bucket:?} in repository URL {url:?} is invalid: a bucket name is 3 to 63 lowercase letters, digits, dots and hyphens"
        )));
    }
    if let Some(bad) = prefix.iter().find(|s| s.is_empty() || **s == "." || **s == "..") {
        return Err(invalid(format!(
            "prefix of repository URL {url:?} has an invalid segment {bad:?}; use plain names separated by single slashes"
        )));
    }
    Ok((bucket.to_string(), prefix.join("/")))
}

/// Checks an endpoint URL: http or https, a host, and no user information, query or fragment.
fn check_endpoint(endpoint: &str) -> Result<&str, StoreError> {
    let rest = endpoint.strip_prefix("https://").or_else(|| endpoint.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Err(invalid(format!("endpoint {endpoint:?} is not an http:// or https:// URL")));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err(invalid(
            "the endpoint URL contains user information; pass credentials through AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or a profile instead".into(),
        ));
    }
    if authority.is_empty() || rest.contains('?') || rest.contains('#') {
        return Err(invalid(format!("endpoint {endpoint:?} is invalid; give a URL such as https://HOST[:PORT]")));
    }
    Ok(endpoint.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

    fn s3(text: &str) -> S3Location {
        match RepoLocation::parse(text, None, None).unwrap() {
            RepoLocation::S3(location) => location,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plain_path_is_local() {
        assert_eq!(RepoLocation::parse("/var/backups/repo", None, None).unwrap(), RepoLocation::Local("/var/backups/repo".into()));
    }

    #[test]
    fn s3_url_splits_bucket_and_prefix() {
        let location = s3("s3://my-bucket/backups/app/");
        assert_eq!(location.bucket, "my-bucket");
        assert_eq!(location.prefix, "backups/app");
        assert_eq!(location.object_key("config"), "backups/app/config");
        assert_eq!(location.to_string(), "s3://my-bucket/backups/app");
    }

    #[test]
    fn s3_url_without_prefix_uses_bucket_root() {
        let location = s3("s3://my-bucket");
        assert_eq!(location.prefix, "");
        assert_eq!(location.object_key("config"), "config");
    }

    #[test]
    fn r2_url_with_account_sets_endpoint() {
        let RepoLocation::S3(location) = RepoLocation::parse(&format!("r2://{ACCOUNT}/backups/d1"), None, None).unwrap() else {
            panic!("not an S3 location")
        };
        assert_eq!(location.flavor, S3Flavor::R2);
        assert_eq!(location.bucket, "backups");
        assert_eq!(location.prefix, "d1");
        assert_eq!(location.endpoint.as_deref(), Some(&*format!("https://{ACCOUNT}.r2.cloudflarestorage.com")));
        assert_eq!(location.to_string(), format!("r2://{ACCOUNT}/backups/d1"));
    }

    #[test]
    fn r2_url_takes_account_from_environment() {
        let RepoLocation::S3(location) = RepoLocation::parse("r2://backups/d1", None, Some(ACCOUNT)).unwrap() else {
            panic!("not an S3 location")
        };
        assert_eq!(location.account_id.as_deref(), Some(ACCOUNT));
        assert_eq!(location.bucket, "backups");
    }

    #[test]
    fn r2_url_without_account_is_rejected() {
        let error = RepoLocation::parse("r2://backups/d1", None, None).unwrap_err().to_string();
        assert!(error.contains("CLOUDFLARE_ACCOUNT_ID"), "{error}");
    }

    #[test]
    fn invalid_bucket_is_rejected() {
        let error = RepoLocation::parse("s3://My_Bucket/x", None, None).unwrap_err().to_string();
        assert!(error.contains("\"My_Bucket\""), "{error}");
    }

    #[test]
    fn missing_bucket_is_rejected() {
        let error = RepoLocation::parse("s3://", None, None).unwrap_err().to_string();
        assert!(error.contains("names no bucket"), "{error}");
    }

    #[test]
    fn empty_prefix_segment_is_rejected() {
        assert!(RepoLocation::parse("s3://bucket/a//b", None, None).is_err());
    }

    #[test]
    fn unknown_scheme_is_rejected() {
        let error = RepoLocation::parse("gs://bucket/x", None, None).unwrap_err().to_string();
        assert!(error.contains("\"gs\""), "{error}");
    }

    #[test]
    fn endpoint_with_user_information_is_rejected() {
        let error = RepoLocation::parse("s3://bucket", Some("http://key:secret@127.0.0.1:9000"), None).unwrap_err().to_string();
        assert!(!error.contains("secret"), "{error}");
    }

    #[test]
    fn custom_endpoint_is_shown_in_location() {
        let RepoLocation::S3(location) = RepoLocation::parse("s3://bucket/p", Some("http://127.0.0.1:9000/"), None).unwrap() else {
            panic!("not an S3 location")
        };
        assert_eq!(location.to_string(), "s3://bucket/p at http://127.0.0.1:9000");
    }
}
