//! API errors: the one table that maps every failure to an AppFlow error code and HTTP status.
//!
//! Handlers return [`ApiError`]; they never choose a status code themselves. The response
//! carries the code twice, as `x-amzn-ErrorType` and as `__type` in the body, because botocore
//! reads the header and other SDKs read the body (`appflow-spec.md` §A.4).
//!
//! Internal failures are logged with their detail and answered with a generic message that
//! only quotes the request id, so storage paths or SQL never reach a caller.

use std::fmt;

use http::StatusCode;
use sluice_connector_api::{ConnectorError, ConnectorErrorKind};
use sluice_metastore::StoreError;

/// Every error code the server can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Bad or missing parameter (400).
    Validation,
    /// The connector's remote system failed (400).
    ConnectorServer,
    /// The operation does not apply to this resource (400).
    UnsupportedOperation,
    /// The connector refused the credentials (401).
    ConnectorAuthentication,
    /// A quota would be exceeded (402).
    ServiceQuotaExceeded,
    /// The caller may not do this (403).
    AccessDenied,
    /// The flow, profile, connector or run does not exist (404).
    ResourceNotFound,
    /// Name taken, resource in use, token reused with other parameters (409).
    Conflict,
    /// Too many requests (429).
    Throttling,
    /// Anything unexpected (500).
    InternalServer,
    /// No operation is bound to this method and path (404).
    UnknownOperation,
    /// The request body exceeds the server's limit (413).
    RequestEntityTooLarge,
    /// The request is not signed (403).
    MissingAuthenticationToken,
    /// The signature header is malformed (403).
    IncompleteSignature,
    /// The access key id is unknown (403).
    UnrecognizedClient,
    /// The signature does not match or has expired (403).
    InvalidSignature,
}

impl ErrorCode {
    /// The wire code, which botocore exposes as `e.response["Error"]["Code"]`.
    pub fn as_str(self) -> &'static str {
        self.entry().0
    }

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        self.entry().1
    }

    /// The table itself.
    fn entry(self) -> (&'static str, StatusCode) {
        match self {
            Self::Validation => ("ValidationException", StatusCode::BAD_REQUEST),
            Self::ConnectorServer => ("ConnectorServerException", StatusCode::BAD_REQUEST),
            Self::UnsupportedOperation => {
                ("UnsupportedOperationException", StatusCode::BAD_REQUEST)
            }
            Self::ConnectorAuthentication => {
                ("ConnectorAuthenticationException", StatusCode::UNAUTHORIZED)
            }
            Self::ServiceQuotaExceeded => (
                "ServiceQuotaExceededException",
                StatusCode::PAYMENT_REQUIRED,
            ),
            Self::AccessDenied => ("AccessDeniedException", StatusCode::FORBIDDEN),
            Self::ResourceNotFound => ("ResourceNotFoundException", StatusCode::NOT_FOUND),
            Self::Conflict => ("ConflictException", StatusCode::CONFLICT),
            Self::Throttling => ("ThrottlingException", StatusCode::TOO_MANY_REQUESTS),
            Self::InternalServer => ("InternalServerException", StatusCode::INTERNAL_SERVER_ERROR),
            Self::UnknownOperation => ("UnknownOperationException", StatusCode::NOT_FOUND),
            Self::RequestEntityTooLarge => (
                "RequestEntityTooLargeException",
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            Self::MissingAuthenticationToken => {
                ("MissingAuthenticationTokenException", StatusCode::FORBIDDEN)
            }
            Self::IncompleteSignature => ("IncompleteSignatureException", StatusCode::FORBIDDEN),
            Self::UnrecognizedClient => ("UnrecognizedClientException", StatusCode::FORBIDDEN),
            Self::InvalidSignature => ("InvalidSignatureException", StatusCode::FORBIDDEN),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answered to an API caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The code (and so the status).
    pub code: ErrorCode,
    /// The message sent to the caller; never contains a secret.
    pub message: String,
}

impl ApiError {
    /// Builds an error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `ValidationException`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Validation, message)
    }

    /// `ResourceNotFoundException`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceNotFound, message)
    }

    /// `ConflictException`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// `InternalServerException`. The cause is logged here; the caller only sees a generic
    /// message (the request id is added by the response writer's log line).
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            ErrorCode::InternalServer,
            "An internal error occurred. Check the server log for details.",
        )
    }

    /// The JSON body, `{"__type": code, "message": message}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "__type": self.code.as_str(), "message": self.message })
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::AlreadyExists { entity, name } => {
                Self::conflict(format!("{} {name} already exists", capitalize(entity)))
            }
            StoreError::NotFound { entity, name } => {
                Self::not_found(format!("{} {name} does not exist", capitalize(entity)))
            }
            StoreError::Conflict(message) => Self::conflict(message),
            other @ (StoreError::Backend(_) | StoreError::Corrupt(_)) => Self::internal(other),
        }
    }
}

impl From<sluice_api_model::validate::ValidationErrors> for ApiError {
    fn from(errors: sluice_api_model::validate::ValidationErrors) -> Self {
        Self::validation(errors.to_string())
    }
}

impl From<sluice_domain::DomainError> for ApiError {
    fn from(error: sluice_domain::DomainError) -> Self {
        Self::validation(error.to_string())
    }
}

/// Maps a connector failure met while serving an API call (profile validation, entity
/// listing) to the AppFlow error a caller expects.
pub(crate) fn connector_error(connector: &str, error: ConnectorError) -> ApiError {
    let message = format!("{connector}: {}", error.message);
    match error.kind {
        ConnectorErrorKind::Authentication => {
            ApiError::new(ErrorCode::ConnectorAuthentication, message)
        }
        ConnectorErrorKind::InvalidConfig | ConnectorErrorKind::BadData => {
            ApiError::validation(message)
        }
        ConnectorErrorKind::NotFound => ApiError::not_found(message),
        ConnectorErrorKind::Unavailable => ApiError::new(ErrorCode::ConnectorServer, message),
        ConnectorErrorKind::Unsupported => ApiError::new(ErrorCode::UnsupportedOperation, message),
        ConnectorErrorKind::Internal => ApiError::internal(message),
    }
}

/// The category of a JSON error, without its message: the message of a JSON error may quote
/// the input, and some inputs are secret.
pub(crate) fn json_error_kind(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Eof => "truncated data",
    }
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A failure to start or run the server itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The listen address cannot be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The data directory or one of its files cannot be created or read.
    #[error("data directory {path}: {message}")]
    DataDir {
        /// The path concerned.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The metadata store cannot be opened.
    #[error("cannot open the metadata store: {0}")]
    Store(#[from] StoreError),
    /// The credential encryption key cannot be loaded.
    #[error("cannot load the credential encryption key: {0}")]
    Secrets(String),
    /// The scheduled flows cannot be loaded.
    #[error("cannot load the scheduled flows: {0}")]
    Scheduler(String),
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Serving failed.
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_appflow() {
        let expected = [
            (ErrorCode::Validation, "ValidationException", 400),
            (ErrorCode::ConnectorServer, "ConnectorServerException", 400),
            (
                ErrorCode::UnsupportedOperation,
                "UnsupportedOperationException",
                400,
            ),
            (
                ErrorCode::ConnectorAuthentication,
                "ConnectorAuthenticationException",
                401,
            ),
            (
                ErrorCode::ServiceQuotaExceeded,
                "ServiceQuotaExceededException",
                402,
            ),
            (ErrorCode::AccessDenied, "AccessDeniedException", 403),
            (
                ErrorCode::ResourceNotFound,
                "ResourceNotFoundException",
                404,
            ),
            (ErrorCode::Conflict, "ConflictException", 409),
            (ErrorCode::Throttling, "ThrottlingException", 429),
            (ErrorCode::InternalServer, "InternalServerException", 500),
            (
                ErrorCode::UnknownOperation,
                "UnknownOperationException",
                404,
            ),
            (
                ErrorCode::RequestEntityTooLarge,
                "RequestEntityTooLargeException",
                413,
            ),
            (
                ErrorCode::MissingAuthenticationToken,
                "MissingAuthenticationTokenException",
                403,
            ),
            (
                ErrorCode::IncompleteSignature,
                "IncompleteSignatureException",
                403,
            ),
            (
                ErrorCode::UnrecognizedClient,
                "UnrecognizedClientException",
                403,
            ),
            (
                ErrorCode::InvalidSignature,
                "InvalidSignatureException",
                403,
            ),
        ];
        for (code, name, status) in expected {
            assert_eq!(code.as_str(), name);
            assert_eq!(code.status().as_u16(), status, "{name}");
        }
    }

    #[test]
    fn store_errors_map_to_api_codes() {
        let exists: ApiError = StoreError::AlreadyExists {
            entity: "flow",
            name: "f1".into(),
        }
        .into();
        assert_eq!(exists, ApiError::conflict("Flow f1 already exists"));
        let missing: ApiError = StoreError::NotFound {
            entity: "connector profile",
            name: "p".into(),
        }
        .into();
        assert_eq!(
            missing,
            ApiError::not_found("Connector profile p does not exist")
        );
        let backend: ApiError = StoreError::Backend("disk I/O error at /secret/path".into()).into();
        assert_eq!(backend.code, ErrorCode::InternalServer);
        assert!(!backend.message.contains("/secret/path"));
    }

    #[test]
    fn body_shape() {
        let error = ApiError::not_found("Flow my-flow does not exist");
        assert_eq!(
            error.body(),
            serde_json::json!({
                "__type": "ResourceNotFoundException",
                "message": "Flow my-flow does not exist"
            })
        );
    }

    #[test]
    fn connector_errors_map_to_api_codes() {
        let auth = connector_error(
            "Salesforce",
            ConnectorError::new(ConnectorErrorKind::Authentication, "token refused"),
        );
        assert_eq!(auth.code, ErrorCode::ConnectorAuthentication);
        assert_eq!(auth.message, "Salesforce: token refused");
        let down = connector_error("S3", ConnectorError::unavailable("503"));
        assert_eq!(down.code, ErrorCode::ConnectorServer);
        let missing = connector_error("S3", ConnectorError::not_found("bucket b"));
        assert_eq!(missing.code, ErrorCode::ResourceNotFound);
    }
}
