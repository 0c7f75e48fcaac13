//! Bucket-name validation.
//!
//! Names follow the S3 general-purpose bucket rules, checked the same way in local-folder mode:
//! there a bucket name becomes a directory name under the storage root, so the rules are also
//! what keeps `..`, `/` and other path tricks out of the file system.

use crate::StorageError;

/// Suffixes S3 reserves for access points and other bucket kinds.
const RESERVED_SUFFIXES: &[&str] = &["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];
/// Prefixes S3 reserves.
const RESERVED_PREFIXES: &[&str] = &["xn--", "sthree-", "amzn-s3-demo-"];

/// Checks `name` against the S3 bucket naming rules: 3–63 characters of lowercase letters,
/// digits, `.` and `-`; starting and ending with a letter or digit; no `..`; not an IPv4
/// address; none of the reserved prefixes and suffixes.
///
/// # Errors
/// [`StorageError::InvalidBucketName`] naming the rule that was broken.
pub fn validate_bucket_name(name: &str) -> Result<(), StorageError> {
    let invalid = |reason: &str| StorageError::InvalidBucketName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    let length = name.len();
    if !(3..=63).contains(&length) {
        return Err(invalid(&format!(
            "must be 3 to 63 characters long, got {length}"
        )));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        return Err(invalid(&format!(
            "may contain only lowercase letters, digits, '.' and '-', found {bad:?}"
        )));
    }
    let bytes = name.as_bytes();
    let alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alphanumeric(bytes[0]) || !alphanumeric(bytes[length - 1]) {
        return Err(invalid("must start and end with a letter or digit"));
    }
    if name.contains("..") {
        return Err(invalid("must not contain two adjacent periods"));
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err(invalid("must not be formatted as an IP address"));
    }
    if let Some(prefix) = RESERVED_PREFIXES.iter().find(|p| name.starts_with(*p)) {
        return Err(invalid(&format!(
            "must not start with the reserved prefix {prefix:?}"
        )));
    }
    if let Some(suffix) = RESERVED_SUFFIXES.iter().find(|s| name.ends_with(*s)) {
        return Err(invalid(&format!(
            "must not end with the reserved suffix {suffix:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in ["abc", "my-bucket", "data.lake.2024", "a1b", &"x".repeat(63)] {
            assert!(validate_bucket_name(name).is_ok(), "{name} should be valid");
        }
    }

    #[test]
    fn rejects_each_rule_with_a_reason() {
        let cases = [
            ("ab", "3 to 63"),
            (&"x".repeat(64) as &str, "3 to 63"),
            ("", "3 to 63"),
            ("My-Bucket", "lowercase"),
            ("bad_name", "lowercase"),
            ("a/b/c", "lowercase"),
            ("caf\u{e9}-b", "lowercase"),
            ("-abc", "start and end"),
            ("abc.", "start and end"),
            ("a..b", "adjacent periods"),
            ("192.168.1.1", "IP address"),
            ("xn--abc", "reserved prefix"),
            ("bucket-s3alias", "reserved suffix"),
        ];
        for (name, reason) in cases {
            let error = validate_bucket_name(name).expect_err(name).to_string();
            assert!(error.contains(reason), "{name:?}: {error}");
        }
    }

    #[test]
    fn rejects_path_traversal() {
        for name in ["..", "../etc", "a/../b", "..."] {
            assert!(
                validate_bucket_name(name).is_err(),
                "{name} must be rejected"
            );
        }
    }
}
