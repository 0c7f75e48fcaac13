//! AWS Signature Version 4: verification of incoming requests, and a signer.
//!
//! The verifier rebuilds the canonical request from the **raw** request line, exactly as the
//! AWS SDKs do when they sign (see `appflow-spec.md` §A.5):
//!
//! - canonical URI: the raw, already percent-encoded path, with dot segments removed, is
//!   URI-encoded **again** (the non-S3 rule), so `/tags/arn%3Aaws…` becomes
//!   `/tags/arn%253Aaws…`;
//! - canonical query: parameters percent-decoded, re-encoded per RFC 3986 and sorted by key,
//!   then value;
//! - canonical headers: the headers named in `SignedHeaders`, lowercased, values trimmed and
//!   inner whitespace collapsed (`host` keeps its port);
//! - payload hash: `x-amz-content-sha256` when the client sent it, else hex SHA-256 of the body.
//!
//! The signer ([`sign`]) produces the same `Authorization` header as botocore, which lets the
//! tests and other Rust callers talk to the server without an AWS SDK.

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The only signing algorithm AppFlow accepts.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The SigV4 service name of AppFlow.
pub const SERVICE: &str = "appflow";

/// How far a request's `X-Amz-Date` may be from the server's clock.
pub const MAX_CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(15);

/// Format of `X-Amz-Date` (`20150830T123600Z`).
const AMZ_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// Why a request's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No `Authorization` header at all.
    #[error("Missing Authentication Token")]
    Missing,
    /// The `Authorization` header or the date header is malformed or incomplete.
    #[error("{0}")]
    Incomplete(String),
    /// The access key id is not known.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// The signature does not match.
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. Consult the service \
         documentation for details."
    )]
    Mismatch,
    /// The request date is too far from the server's clock.
    #[error("{0}")]
    Expired(String),
}

/// The parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// Access key id from the credential scope.
    pub access_key_id: String,
    /// `yyyymmdd` from the credential scope.
    pub date: String,
    /// Region from the credential scope.
    pub region: String,
    /// Service from the credential scope.
    pub service: String,
    /// Lowercased header names from `SignedHeaders`, in the order given.
    pub signed_headers: Vec<String>,
    /// Hex signature.
    pub signature: String,
}

impl Authorization {
    /// The credential scope, `yyyymmdd/region/service/aws4_request`.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// Parses `AWS4-HMAC-SHA256 Credential=AK/yyyymmdd/region/service/aws4_request,
/// SignedHeaders=a;b, Signature=hex`.
///
/// # Errors
/// [`SigV4Error::Incomplete`] naming what is missing or malformed.
pub fn parse_authorization(value: &str) -> Result<Authorization, SigV4Error> {
    let value = value.trim();
    let Some(rest) = value.strip_prefix(ALGORITHM) else {
        let algorithm = value.split_whitespace().next().unwrap_or_default();
        return Err(SigV4Error::Incomplete(format!(
            "Unsupported Authorization algorithm '{algorithm}': only {ALGORITHM} is accepted"
        )));
    };
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Err(SigV4Error::Incomplete(format!(
            "Authorization header must start with '{ALGORITHM} '"
        )));
    }
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((key, val)) = part.split_once('=') else {
            return Err(SigV4Error::Incomplete(format!(
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' \
                 parameters; cannot parse '{part}'"
            )));
        };
        match key.trim() {
            "Credential" => credential = Some(val.trim()),
            "SignedHeaders" => signed_headers = Some(val.trim()),
            "Signature" => signature = Some(val.trim()),
            _ => {}
        }
    }
    let missing: Vec<&str> = [
        ("Credential", credential.is_none()),
        ("SignedHeaders", signed_headers.is_none()),
        ("Signature", signature.is_none()),
    ]
    .iter()
    .filter(|(_, absent)| *absent)
    .map(|(name, _)| *name)
    .collect();
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(SigV4Error::Incomplete(format!(
            "Authorization header requires '{}' parameter(s)",
            missing.join("', '")
        )));
    };

    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = scope.as_slice() else {
        return Err(SigV4Error::Incomplete(format!(
            "Credential should be scoped to a valid region, service and date: \
             expected 'ACCESS_KEY/yyyymmdd/region/service/aws4_request', got '{}'",
            redact_credential(credential)
        )));
    };
    if access_key_id.is_empty() {
        return Err(SigV4Error::Incomplete(
            "Credential has an empty access key id".into(),
        ));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SigV4Error::Incomplete(format!(
            "Credential should be scoped to a valid date (yyyymmdd), got '{date}'"
        )));
    }
    if region.is_empty() || service.is_empty() {
        return Err(SigV4Error::Incomplete(
            "Credential should be scoped to a non-empty region and service".into(),
        ));
    }
    if *terminator != "aws4_request" {
        return Err(SigV4Error::Incomplete(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not \
             '{terminator}'"
        )));
    }
    if signed_headers.is_empty() {
        return Err(SigV4Error::Incomplete(
            "SignedHeaders must not be empty".into(),
        ));
    }
    let signed_headers: Vec<String> = signed_headers
        .split(';')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    if signed_headers.iter().any(String::is_empty) {
        return Err(SigV4Error::Incomplete(
            "SignedHeaders contains an empty header name".into(),
        ));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SigV4Error::Incomplete(
            "Signature must be 64 hexadecimal characters".into(),
        ));
    }
    Ok(Authorization {
        access_key_id: (*access_key_id).to_string(),
        date: (*date).to_string(),
        region: (*region).to_string(),
        service: (*service).to_string(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
    })
}

/// Keeps only the scope of a credential string in error messages (the access key id is not a
/// secret, but there is no reason to echo it back).
fn redact_credential(credential: &str) -> String {
    match credential.split_once('/') {
        Some((_, scope)) => format!("…/{scope}"),
        None => "…".to_string(),
    }
}

/// Parses an `X-Amz-Date` value.
///
/// # Errors
/// [`SigV4Error::Incomplete`] when the value is not `yyyymmddThhmmssZ`.
pub fn parse_amz_date(value: &str) -> Result<DateTime<Utc>, SigV4Error> {
    NaiveDateTime::parse_from_str(value.trim(), AMZ_DATE_FORMAT)
        .map(|t| t.and_utc())
        .map_err(|_| {
            SigV4Error::Incomplete(format!(
                "Invalid X-Amz-Date '{value}': expected the format yyyyMMdd'T'HHmmss'Z'"
            ))
        })
}

/// Formats an instant as `X-Amz-Date`.
pub fn format_amz_date(time: DateTime<Utc>) -> String {
    time.format(AMZ_DATE_FORMAT).to_string()
}

/// Rejects a request date more than [`MAX_CLOCK_SKEW`] away from `now`, with AWS's wording.
///
/// # Errors
/// [`SigV4Error::Expired`].
pub fn check_skew(request_time: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), SigV4Error> {
    let earliest = now - MAX_CLOCK_SKEW;
    let latest = now + MAX_CLOCK_SKEW;
    if request_time < earliest {
        return Err(SigV4Error::Expired(format!(
            "Signature expired: {} is now earlier than {} ({} - 15 min.)",
            format_amz_date(request_time),
            format_amz_date(earliest),
            format_amz_date(now)
        )));
    }
    if request_time > latest {
        return Err(SigV4Error::Expired(format!(
            "Signature not yet current: {} is still later than {} ({} + 15 min.)",
            format_amz_date(request_time),
            format_amz_date(latest),
            format_amz_date(now)
        )));
    }
    Ok(())
}

/// Percent-encodes per RFC 3986: everything but `A-Z a-z 0-9 - _ . ~` (and `/` when
/// `keep_slash`).
fn uri_encode(input: &[u8], keep_slash: bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(input.len());
    for &b in input {
        let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        if unreserved || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// Decodes `%XX` escapes; an invalid escape is kept literally, as the SDKs would have encoded
/// a literal `%` as `%25`.
fn percent_decode(input: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(input).collect()
}

/// Removes `.` and `..` segments like botocore's `normalize_url_path`; an empty path is `/`.
fn normalize_path(raw_path: &str) -> String {
    if raw_path.is_empty() {
        return "/".to_string();
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in raw_path.split('/') {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            "" => {}
            s => segments.push(s),
        }
    }
    let mut path = format!("/{}", segments.join("/"));
    if raw_path.ends_with('/') && path != "/" {
        path.push('/');
    }
    path
}

/// The canonical URI of a request: the raw (already encoded) path, normalized and encoded
/// once more.
pub fn canonical_uri(raw_path: &str) -> String {
    uri_encode(normalize_path(raw_path).as_bytes(), true)
}

/// The canonical query string: parameters decoded, re-encoded per RFC 3986 and sorted by
/// key, then by value. A parameter without `=` gets an empty value.
pub fn canonical_query(raw_query: Option<&str>) -> String {
    let Some(raw_query) = raw_query else {
        return String::new();
    };
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                uri_encode(&percent_decode(key), false),
                uri_encode(&percent_decode(value), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Trims a header value and collapses runs of whitespace into one space.
fn canonical_header_value(value: &[u8]) -> String {
    String::from_utf8_lossy(value)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A request as the signer and verifier see it: the raw request line parts, the headers and
/// the body.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// The raw path, exactly as sent (still percent-encoded).
    pub raw_path: &'a str,
    /// The raw query string without `?`, if any.
    pub raw_query: Option<&'a str>,
    /// Request headers.
    pub headers: &'a http::HeaderMap,
    /// Request body.
    pub body: &'a [u8],
}

/// Hex SHA-256 of `data`.
pub fn hex_sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Builds the canonical request for `parts` over `signed_headers` (lowercase names).
///
/// # Errors
/// [`SigV4Error::Incomplete`] when a signed header is absent from the request.
pub fn canonical_request(
    parts: &RequestParts<'_>,
    signed_headers: &[String],
) -> Result<String, SigV4Error> {
    let mut canonical_headers = String::new();
    for name in signed_headers {
        let values: Vec<String> = parts
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| canonical_header_value(v.as_bytes()))
            .collect();
        if values.is_empty() {
            return Err(SigV4Error::Incomplete(format!(
                "Header '{name}' is listed in SignedHeaders but missing from the request"
            )));
        }
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&values.join(","));
        canonical_headers.push('\n');
    }
    let payload_hash = match parts.headers.get("x-amz-content-sha256") {
        Some(value) => canonical_header_value(value.as_bytes()),
        None => hex_sha256(parts.body),
    };
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        parts.method,
        canonical_uri(parts.raw_path),
        canonical_query(parts.raw_query),
        canonical_headers,
        signed_headers.join(";"),
        payload_hash
    ))
}

/// The string to sign for a canonical request.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex_sha256(canonical_request.as_bytes())
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Derives the signing key for `secret` and the credential scope.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// The hex signature of `string_to_sign` under `key`.
pub fn signature(key: &[u8], string_to_sign: &str) -> String {
    hex::encode(hmac(key, string_to_sign.as_bytes()))
}

/// Verifies a parsed [`Authorization`] against the request and the caller's secret.
///
/// `amz_date` is the request's `X-Amz-Date` value; the skew is checked separately by
/// [`check_skew`]. The comparison is constant-time.
///
/// # Errors
/// [`SigV4Error::Incomplete`] for an inconsistent scope, [`SigV4Error::Mismatch`] for a wrong
/// signature.
pub fn verify(
    auth: &Authorization,
    parts: &RequestParts<'_>,
    amz_date: &str,
    secret: &str,
) -> Result<(), SigV4Error> {
    if !amz_date.starts_with(&auth.date) {
        return Err(SigV4Error::Incomplete(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '{}' != '{}'",
            auth.date,
            amz_date.get(..8).unwrap_or(amz_date)
        )));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(SigV4Error::Incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    let canonical = canonical_request(parts, &auth.signed_headers)?;
    let to_sign = string_to_sign(amz_date, &auth.scope(), &canonical);
    let key = signing_key(secret, &auth.date, &auth.region, &auth.service);
    let Ok(provided) = hex::decode(&auth.signature) else {
        return Err(SigV4Error::Mismatch);
    };
    let mut mac = HmacSha256::new_from_slice(&key).expect("HMAC accepts keys of any length");
    mac.update(to_sign.as_bytes());
    // `verify_slice` compares in constant time.
    mac.verify_slice(&provided)
        .map_err(|_| SigV4Error::Mismatch)
}

/// Credentials for [`sign`].
#[derive(Clone)]
pub struct Credentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: sluice_types::Sensitive<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Signs a request the way botocore does and returns the `Authorization` header value.
///
/// The caller must already have put `host` and `x-amz-date` (and any other header it wants
/// signed) into `parts.headers`; every header in `parts.headers` whose name is `host`,
/// `content-type` or starts with `x-amz-` is signed.
///
/// # Errors
/// [`SigV4Error::Incomplete`] when `x-amz-date` or `host` is missing or malformed.
pub fn sign(
    parts: &RequestParts<'_>,
    credentials: &Credentials,
    region: &str,
    service: &str,
) -> Result<String, SigV4Error> {
    let amz_date = parts
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| SigV4Error::Incomplete("x-amz-date header is required to sign".into()))?
        .to_string();
    parse_amz_date(&amz_date)?;
    let mut signed_headers: Vec<String> = parts
        .headers
        .keys()
        .map(|k| k.as_str().to_ascii_lowercase())
        .filter(|k| k == "host" || k == "content-type" || k.starts_with("x-amz-"))
        .collect();
    signed_headers.sort();
    signed_headers.dedup();
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(SigV4Error::Incomplete(
            "host header is required to sign".into(),
        ));
    }
    let date = &amz_date[..8];
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let canonical = canonical_request(parts, &signed_headers)?;
    let to_sign = string_to_sign(&amz_date, &scope, &canonical);
    let key = signing_key(
        credentials.secret_access_key.expose(),
        date,
        region,
        service,
    );
    Ok(format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={}",
        credentials.access_key_id,
        signed_headers.join(";"),
        signature(&key, &to_sign)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    fn iam_example_headers() -> HeaderMap {
        headers(&[
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("host", "iam.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
        ])
    }

    #[test]
    fn aws_published_iam_example() {
        let headers = iam_example_headers();
        let parts = RequestParts {
            method: "GET",
            raw_path: "/",
            raw_query: Some("Action=ListUsers&Version=2010-05-08"),
            headers: &headers,
            body: b"",
        };
        let signed: Vec<String> = ["content-type", "host", "x-amz-date"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let canonical = canonical_request(&parts, &signed).unwrap();
        assert_eq!(
            canonical,
            "GET\n/\nAction=ListUsers&Version=2010-05-08\n\
             content-type:application/x-www-form-urlencoded; charset=utf-8\n\
             host:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
             content-type;host;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex_sha256(canonical.as_bytes()),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let to_sign = string_to_sign(
            "20150830T123600Z",
            "20150830/us-east-1/iam/aws4_request",
            &canonical,
        );
        let key = signing_key(SECRET, "20150830", "us-east-1", "iam");
        assert_eq!(
            hex::encode(&key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
        assert_eq!(
            signature(&key, &to_sign),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );

        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SECRET.to_string().into(),
        };
        let header = sign(&parts, &credentials, "us-east-1", "iam").unwrap();
        assert_eq!(
            header,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
        let auth = parse_authorization(&header).unwrap();
        verify(&auth, &parts, "20150830T123600Z", SECRET).unwrap();
        assert_eq!(
            verify(&auth, &parts, "20150830T123600Z", "wrong-secret"),
            Err(SigV4Error::Mismatch)
        );
    }

    #[test]
    fn a_tampered_request_does_not_verify() {
        let headers = iam_example_headers();
        let parts = RequestParts {
            method: "GET",
            raw_path: "/",
            raw_query: Some("Action=ListUsers&Version=2010-05-08"),
            headers: &headers,
            body: b"",
        };
        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SECRET.to_string().into(),
        };
        let auth =
            parse_authorization(&sign(&parts, &credentials, "us-east-1", "iam").unwrap()).unwrap();
        let tampered = RequestParts {
            raw_query: Some("Action=DeleteUser"),
            ..parts
        };
        assert_eq!(
            verify(&auth, &tampered, "20150830T123600Z", SECRET),
            Err(SigV4Error::Mismatch)
        );
        let other_body = RequestParts {
            body: b"{}",
            ..parts
        };
        assert_eq!(
            verify(&auth, &other_body, "20150830T123600Z", SECRET),
            Err(SigV4Error::Mismatch)
        );
    }

    #[test]
    fn tags_path_is_double_encoded() {
        let raw = "/tags/arn%3Aaws%3Aappflow%3Aus-east-1%3A123456789012%3Aflow%2Fmy-flow";
        assert_eq!(
            canonical_uri(raw),
            "/tags/arn%253Aaws%253Aappflow%253Aus-east-1%253A123456789012%253Aflow%252Fmy-flow"
        );
        // Unreserved characters and slashes are left alone.
        assert_eq!(canonical_uri("/create-flow"), "/create-flow");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/a/./b/../c/"), "/a/c/");
        // A literal space or unicode is encoded once (it arrives already encoded).
        assert_eq!(canonical_uri("/tags/caf%C3%A9"), "/tags/caf%25C3%25A9");
    }

    #[test]
    fn double_encoded_tags_request_round_trips() {
        let headers = headers(&[
            ("host", "127.0.0.1:18455"),
            ("x-amz-date", "20261124T100425Z"),
        ]);
        let parts = RequestParts {
            method: "DELETE",
            raw_path: "/tags/arn%3Aaws%3Aappflow%3Aus-east-1%3A123456789012%3Aflow%2Fmy-flow",
            raw_query: Some("tagKeys=b&tagKeys=a"),
            headers: &headers,
            body: b"",
        };
        let canonical =
            canonical_request(&parts, &["host".to_string(), "x-amz-date".to_string()]).unwrap();
        assert!(
            canonical.contains("\n/tags/arn%253Aaws%253A"),
            "{canonical}"
        );
        assert!(canonical.contains("\ntagKeys=a&tagKeys=b\n"), "{canonical}");
        assert!(
            canonical.contains("\nhost:127.0.0.1:18455\n"),
            "{canonical}"
        );
        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SECRET.to_string().into(),
        };
        let header = sign(&parts, &credentials, "us-east-1", SERVICE).unwrap();
        let auth = parse_authorization(&header).unwrap();
        assert_eq!(auth.signed_headers, vec!["host", "x-amz-date"]);
        verify(&auth, &parts, "20261124T100425Z", SECRET).unwrap();
        // Verifying against a singly-decoded path must fail: the server must use the raw path.
        let decoded = RequestParts {
            raw_path: "/tags/arn:aws:appflow:us-east-1:123456789012:flow/my-flow",
            ..parts
        };
        assert_eq!(
            verify(&auth, &decoded, "20261124T100425Z", SECRET),
            Err(SigV4Error::Mismatch)
        );
    }

    #[test]
    fn canonical_query_sorts_and_reencodes() {
        assert_eq!(canonical_query(None), "");
        assert_eq!(canonical_query(Some("")), "");
        assert_eq!(canonical_query(Some("b=2&a=1&a=0")), "a=0&a=1&b=2");
        assert_eq!(canonical_query(Some("k=a%20b&flag")), "flag=&k=a%20b");
        assert_eq!(canonical_query(Some("k=a+b")), "k=a%2Bb");
        assert_eq!(
            canonical_query(Some("k=%E2%9C%93&x=~._-")),
            "k=%E2%9C%93&x=~._-"
        );
        assert_eq!(canonical_query(Some("k=%zz")), "k=%25zz");
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        let headers = headers(&[
            ("host", "example.com"),
            ("x-amz-date", "20150830T123600Z"),
            ("my-header", "  a   b \t c  "),
        ]);
        let parts = RequestParts {
            method: "POST",
            raw_path: "/",
            raw_query: None,
            headers: &headers,
            body: b"x",
        };
        let canonical = canonical_request(&parts, &["my-header".to_string()]).unwrap();
        assert!(canonical.contains("\nmy-header:a b c\n"), "{canonical}");
        let missing = canonical_request(&parts, &["absent".to_string()]).unwrap_err();
        assert!(matches!(missing, SigV4Error::Incomplete(m) if m.contains("absent")));
    }

    #[test]
    fn content_sha256_header_overrides_the_body_hash() {
        let headers = headers(&[
            ("host", "example.com"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
        ]);
        let parts = RequestParts {
            method: "PUT",
            raw_path: "/",
            raw_query: None,
            headers: &headers,
            body: b"x",
        };
        let canonical = canonical_request(&parts, &["host".to_string()]).unwrap();
        assert!(canonical.ends_with("\nUNSIGNED-PAYLOAD"), "{canonical}");
    }

    #[test]
    fn authorization_header_parsing() {
        let ok = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AK/20261124/eu-west-1/appflow/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, Signature=ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
        )
        .unwrap();
        assert_eq!(ok.access_key_id, "AK");
        assert_eq!(ok.region, "eu-west-1");
        assert_eq!(ok.service, "appflow");
        assert_eq!(ok.scope(), "20261124/eu-west-1/appflow/aws4_request");
        assert_eq!(
            ok.signature,
            "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
        );

        let cases = [
            (
                "Basic dXNlcjpwYXNz",
                "Unsupported Authorization algorithm 'Basic'",
            ),
            ("AWS4-HMAC-SHA256", "requires"),
            (
                "AWS4-HMAC-SHA256 Credential=AK/20261124/us-east-1/appflow/aws4_request",
                "SignedHeaders",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AK/2026/us-east-1/appflow/aws4_request, SignedHeaders=host, Signature=00",
                "valid date",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AK/20261124/us-east-1/appflow, SignedHeaders=host, Signature=00",
                "expected 'ACCESS_KEY/yyyymmdd/region/service/aws4_request'",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AK/20261124/us-east-1/appflow/aws5_request, SignedHeaders=host, Signature=00",
                "terminator",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AK/20261124/us-east-1/appflow/aws4_request, SignedHeaders=host, Signature=zz",
                "64 hexadecimal",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AK/20261124/us-east-1/appflow/aws4_request, SignedHeaders=, Signature=00",
                "SignedHeaders must not be empty",
            ),
            ("AWS4-HMAC-SHA256 garbage", "cannot parse 'garbage'"),
        ];
        for (header, expected) in cases {
            match parse_authorization(header) {
                Err(SigV4Error::Incomplete(message)) => {
                    assert!(message.contains(expected), "{header}: {message}")
                }
                other => panic!("{header}: unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn dates_and_skew() {
        let t = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(format_amz_date(t), "20150830T123600Z");
        assert!(parse_amz_date("2015-08-30T12:36:00Z").is_err());
        assert!(parse_amz_date("").is_err());
        assert!(parse_amz_date("20151330T123600Z").is_err());

        check_skew(t, t + chrono::Duration::minutes(15)).unwrap();
        check_skew(t, t - chrono::Duration::minutes(15)).unwrap();
        let late = check_skew(t, t + chrono::Duration::minutes(16)).unwrap_err();
        assert_eq!(
            late,
            SigV4Error::Expired(
                "Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z \
                 (20150830T125200Z - 15 min.)"
                    .into()
            )
        );
        let early = check_skew(t, t - chrono::Duration::minutes(16)).unwrap_err();
        assert!(
            matches!(early, SigV4Error::Expired(m) if m.starts_with("Signature not yet current"))
        );
    }

    #[test]
    fn scope_date_must_match_the_request_date() {
        let headers = iam_example_headers();
        let parts = RequestParts {
            method: "GET",
            raw_path: "/",
            raw_query: None,
            headers: &headers,
            body: b"",
        };
        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SECRET.to_string().into(),
        };
        let auth =
            parse_authorization(&sign(&parts, &credentials, "us-east-1", "iam").unwrap()).unwrap();
        let err = verify(&auth, &parts, "20150831T000000Z", SECRET).unwrap_err();
        assert!(matches!(err, SigV4Error::Incomplete(m) if m.contains("20150830")));
    }
}
