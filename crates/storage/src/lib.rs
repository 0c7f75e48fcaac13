//! Object storage for buckets: S3-compatible endpoints or local folders, via object_store.
