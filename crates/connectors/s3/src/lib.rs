//! Amazon S3 (and S3-compatible) source and destination connector.
