//! `maxResults` / `nextToken` handling shared by every paginated operation.
//!
//! A `nextToken` is opaque to clients: URL-safe base64 of a small JSON cursor that names the
//! operation it belongs to and the key of the last item returned (keyset pagination, so
//! concurrent inserts never cause skipped or repeated items). A token that does not decode,
//! or that belongs to another operation, is a `ValidationException`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Page size when the request has no `maxResults`.
pub(crate) const DEFAULT_PAGE_SIZE: usize = 20;

/// Largest `maxResults` for every paginated operation except `ListConnectorEntities`.
pub(crate) const MAX_PAGE_SIZE: usize = 100;

/// Largest `maxResults` for `ListConnectorEntities`.
pub(crate) const MAX_ENTITY_PAGE_SIZE: usize = 10_000;

/// Where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    /// Key of the last item of the previous page (a name, a label, an execution id...).
    #[serde(rename = "k")]
    pub key: String,
    /// Secondary sort value of that item, when the order has one (run start, epoch microseconds).
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub time_micros: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct Token {
    #[serde(rename = "v")]
    version: u8,
    #[serde(rename = "o")]
    operation: String,
    #[serde(flatten)]
    cursor: Cursor,
}

const TOKEN_VERSION: u8 = 1;

/// The effective page size: `maxResults` or the default, within `1..=max`.
///
/// The model validator already rejects out-of-range values; this re-check keeps a handler
/// safe even if it is called with an unvalidated request.
pub(crate) fn page_size(max_results: Option<i32>, max: usize) -> Result<usize, ApiError> {
    match max_results {
        None => Ok(DEFAULT_PAGE_SIZE.min(max)),
        Some(n) if n >= 1 && usize::try_from(n).is_ok_and(|n| n <= max) => {
            Ok(usize::try_from(n).unwrap_or(DEFAULT_PAGE_SIZE))
        }
        Some(n) => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy \
             constraint: Member must have value between 1 and {max}"
        ))),
    }
}

/// Encodes the token for the page after `cursor`.
pub(crate) fn encode(operation: &str, cursor: Cursor) -> String {
    let token = Token {
        version: TOKEN_VERSION,
        operation: operation.to_string(),
        cursor,
    };
    // Serializing a struct of strings and integers cannot fail.
    let json = serde_json::to_vec(&token).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a request's `nextToken`; `None` means the first page.
pub(crate) fn decode(operation: &str, token: Option<&str>) -> Result<Option<Cursor>, ApiError> {
    let Some(token) = token else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::validation(format!(
            "Invalid nextToken for {operation}: pass the nextToken returned by a previous \
             {operation} call unchanged"
        ))
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| invalid())?;
    let parsed: Token = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if parsed.version != TOKEN_VERSION || parsed.operation != operation {
        return Err(invalid());
    }
    Ok(Some(parsed.cursor))
}

/// Splits `items` (fetched with one extra item) into a page and the token for the next one.
pub(crate) fn finish_page<T>(
    operation: &str,
    mut items: Vec<T>,
    page_size: usize,
    cursor_of: impl Fn(&T) -> Cursor,
) -> (Vec<T>, Option<String>) {
    if items.len() <= page_size {
        return (items, None);
    }
    items.truncate(page_size);
    let next = items.last().map(|last| encode(operation, cursor_of(last)));
    (items, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn tokens_round_trip() {
        let cursor = Cursor {
            key: "flow-é/1".into(),
            time_micros: Some(1_700_000_000_123),
        };
        let token = encode("ListFlows", cursor.clone());
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(decode("ListFlows", Some(&token)).unwrap(), Some(cursor));
        assert_eq!(decode("ListFlows", None).unwrap(), None);
    }

    #[test]
    fn garbage_and_foreign_tokens_are_validation_errors() {
        let foreign = encode(
            "ListConnectors",
            Cursor {
                key: "a".into(),
                time_micros: None,
            },
        );
        for bad in ["garbage!!", "", "e30", foreign.as_str(), "bm90IGpzb24"] {
            let error = decode("ListFlows", Some(bad)).unwrap_err();
            assert_eq!(error.code, ErrorCode::Validation, "{bad}");
            assert!(error.message.contains("nextToken"), "{bad}");
        }
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(None, MAX_PAGE_SIZE).unwrap(), 20);
        assert_eq!(page_size(Some(1), MAX_PAGE_SIZE).unwrap(), 1);
        assert_eq!(page_size(Some(100), MAX_PAGE_SIZE).unwrap(), 100);
        assert_eq!(
            page_size(Some(10_000), MAX_ENTITY_PAGE_SIZE).unwrap(),
            10_000
        );
        for bad in [0, -1, 101, i32::MAX, i32::MIN] {
            assert_eq!(
                page_size(Some(bad), MAX_PAGE_SIZE).unwrap_err().code,
                ErrorCode::Validation
            );
        }
    }

    #[test]
    fn finish_page_detects_the_extra_item() {
        let key = |s: &&str| Cursor {
            key: (*s).to_string(),
            time_micros: None,
        };
        let (page, next) = finish_page("ListFlows", vec!["a", "b"], 2, key);
        assert_eq!(page, vec!["a", "b"]);
        assert_eq!(next, None);
        let (page, next) = finish_page("ListFlows", vec!["a", "b", "c"], 2, key);
        assert_eq!(page, vec!["a", "b"]);
        let cursor = decode("ListFlows", next.as_deref()).unwrap().unwrap();
        assert_eq!(cursor.key, "b");
    }
}
