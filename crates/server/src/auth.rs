//! Authentication of API calls: SigV4 verification against the known access keys.
//!
//! Keys come from two places: the root key of the configuration, and API keys in the
//! metadata store (secrets sealed with the data directory's key, associated data = the access
//! key id). The order of checks follows AWS: a malformed or missing signature first, then an
//! unknown key, then the clock skew, then the signature itself.

use chrono::Utc;

use crate::error::{ApiError, ErrorCode};
use crate::sigv4::{self, RequestParts, SigV4Error};
use crate::state::{Caller, Services};

/// The access key id claimed by a request, if its `Authorization` header parses (for the
/// audit log of rejected calls).
pub(crate) fn claimed_access_key(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    sigv4::parse_authorization(value)
        .ok()
        .map(|auth| auth.access_key_id)
}

/// Verifies the request's signature and returns the caller.
pub(crate) async fn authenticate(
    services: &Services,
    parts: &RequestParts<'_>,
) -> Result<Caller, ApiError> {
    let header = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .ok_or(SigV4Error::Missing)
        .map_err(sigv4_error)?;
    let header = header.to_str().map_err(|_| {
        sigv4_error(SigV4Error::Incomplete(
            "Authorization header is not valid ASCII".into(),
        ))
    })?;
    let auth = sigv4::parse_authorization(header).map_err(sigv4_error)?;
    let amz_date = match parts.headers.get("x-amz-date") {
        Some(value) => value.to_str().map(str::to_string).map_err(|_| {
            sigv4_error(SigV4Error::Incomplete(
                "X-Amz-Date header is not valid ASCII".into(),
            ))
        })?,
        None => {
            return Err(sigv4_error(SigV4Error::Incomplete(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
                 header; Sluice requires 'X-Amz-Date'"
                    .into(),
            )));
        }
    };
    let request_time = sigv4::parse_amz_date(&amz_date).map_err(sigv4_error)?;
    if auth.service != sigv4::SERVICE {
        return Err(sigv4_error(SigV4Error::Incomplete(format!(
            "Credential should be scoped to correct service: '{}', not '{}'",
            sigv4::SERVICE,
            auth.service
        ))));
    }

    let (secret, arn) = lookup_secret(services, &auth.access_key_id).await?;
    sigv4::check_skew(request_time, Utc::now()).map_err(sigv4_error)?;
    sigv4::verify(&auth, parts, &amz_date, &secret).map_err(sigv4_error)?;
    Ok(Caller {
        access_key_id: auth.access_key_id,
        arn,
    })
}

/// The secret of `access_key_id` and the caller ARN it stands for.
async fn lookup_secret(
    services: &Services,
    access_key_id: &str,
) -> Result<(String, String), ApiError> {
    let account = &services.config.account_id;
    if let Some(root) = &services.config.root_credentials
        && root.access_key_id == access_key_id
    {
        return Ok((
            root.secret_access_key.expose().clone(),
            format!("arn:aws:iam::{account}:root"),
        ));
    }
    let record = services
        .store
        .get_api_key(access_key_id)
        .await
        .map_err(ApiError::from)?;
    let Some(record) = record.filter(|r| !r.disabled) else {
        return Err(sigv4_error(SigV4Error::UnrecognizedClient));
    };
    let secret = services
        .secrets
        .open(&record.sealed_secret, access_key_id.as_bytes())
        .map_err(|error| {
            ApiError::internal(format!(
                "secret of API key {access_key_id} cannot be opened: {error}"
            ))
        })?;
    let secret = String::from_utf8(secret).map_err(|_| {
        ApiError::internal(format!("secret of API key {access_key_id} is not UTF-8"))
    })?;
    Ok((
        secret,
        format!("arn:aws:iam::{account}:user/{access_key_id}"),
    ))
}

/// Maps a signature failure to its AWS error code.
pub(crate) fn sigv4_error(error: SigV4Error) -> ApiError {
    let code = match &error {
        SigV4Error::Missing => ErrorCode::MissingAuthenticationToken,
        SigV4Error::Incomplete(_) => ErrorCode::IncompleteSignature,
        SigV4Error::UnrecognizedClient => ErrorCode::UnrecognizedClient,
        SigV4Error::Mismatch | SigV4Error::Expired(_) => ErrorCode::InvalidSignature,
    };
    ApiError::new(code, error.to_string())
}
