//! Live counters of one run.
//!
//! The engine bumps plain atomics as batches flow, and anyone holding the shared
//! [`RunProgress`] (the server's run manager, `sluice run`) reads a consistent-enough
//! [`ProgressSnapshot`] whenever it likes. Relaxed ordering is enough: every counter is
//! monotonic and independent, and the final snapshot is taken after the run's stages joined.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::RecordBatch;

use serde::Serialize;

/// Counters of a run in progress, shared between the engine and its observers.
#[derive(Debug, Default)]
pub struct RunProgress {
    records_processed: AtomicU64,
    records_filtered: AtomicU64,
    bytes_processed: AtomicU64,
    bytes_written: AtomicU64,
    put_failures: AtomicU64,
    /// Source field names seen so far, in first-seen order.
    source_fields: Mutex<Vec<String>>,
}

/// A point-in-time copy of [`RunProgress`]; field names follow AppFlow's `ExecutionResult`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressSnapshot {
    /// Records read from the source (AppFlow `recordsProcessed`).
    pub records_processed: u64,
    /// Records removed by Filter conditions and `DropRecord` validations.
    pub records_filtered: u64,
    /// Bytes read from the source system (AppFlow `bytesProcessed`).
    pub bytes_processed: u64,
    /// Bytes written to the destination (AppFlow `bytesWritten`).
    pub bytes_written: u64,
    /// Records the destination rejected (AppFlow `errorInfo.putFailuresCount`).
    pub put_failures: u64,
}

impl RunProgress {
    /// Reads every counter.
    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            records_processed: self.records_processed.load(Ordering::Relaxed),
            records_filtered: self.records_filtered.load(Ordering::Relaxed),
            bytes_processed: self.bytes_processed.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            put_failures: self.put_failures.load(Ordering::Relaxed),
        }
    }

    /// Source field names seen so far in the run, in first-seen order (for `schemaVersion`
    /// bookkeeping: a source that picks up new fields by itself shows them here).
    pub fn source_fields(&self) -> Vec<String> {
        self.source_fields
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Adds the fields of `batch` not seen before.
    pub(crate) fn note_source_fields(&self, batch: &RecordBatch) {
        let mut known = self
            .source_fields
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for field in batch.schema_ref().fields() {
            if !known.iter().any(|name| name == field.name()) {
                known.push(field.name().clone());
            }
        }
    }

    pub(crate) fn add_records_processed(&self, records: u64) {
        self.records_processed.fetch_add(records, Ordering::Relaxed);
    }

    pub(crate) fn add_records_filtered(&self, records: u64) {
        self.records_filtered.fetch_add(records, Ordering::Relaxed);
    }

    /// The source reports a running total, so this stores rather than adds. `fetch_max` keeps
    /// the counter monotonic even if two readers of the total race.
    pub(crate) fn set_bytes_processed(&self, bytes: u64) {
        self.bytes_processed.fetch_max(bytes, Ordering::Relaxed);
    }

    pub(crate) fn set_bytes_written(&self, bytes: u64) {
        self.bytes_written.fetch_max(bytes, Ordering::Relaxed);
    }

    pub(crate) fn set_put_failures(&self, records: u64) {
        self.put_failures.fetch_max(records, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reflects_updates_and_totals_never_go_backwards() {
        let progress = RunProgress::default();
        assert_eq!(progress.snapshot(), ProgressSnapshot::default());

        progress.add_records_processed(10);
        progress.add_records_processed(5);
        progress.add_records_filtered(3);
        progress.set_bytes_processed(1_000);
        progress.set_bytes_processed(400);
        progress.set_bytes_written(77);
        progress.set_put_failures(2);

        let snapshot = progress.snapshot();
        assert_eq!(snapshot.records_processed, 15);
        assert_eq!(snapshot.records_filtered, 3);
        assert_eq!(snapshot.bytes_processed, 1_000);
        assert_eq!(snapshot.bytes_written, 77);
        assert_eq!(snapshot.put_failures, 2);
    }

    #[test]
    fn snapshot_serializes_with_appflow_names() {
        let progress = RunProgress::default();
        progress.add_records_processed(u64::MAX);
        let json = serde_json::to_value(progress.snapshot()).expect("serializable");
        assert_eq!(json["recordsProcessed"], serde_json::json!(u64::MAX));
        assert_eq!(json["bytesWritten"], serde_json::json!(0));
        assert_eq!(json["putFailures"], serde_json::json!(0));
    }
}
