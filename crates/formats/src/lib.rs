//! CSV, JSON Lines and Parquet readers and writers for Arrow record batches.
