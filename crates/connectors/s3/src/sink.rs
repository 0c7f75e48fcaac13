//! Writing one run's output: partitioned, rolled into files, published only on commit.
//!
//! Every output file is a multipart upload. Parts are uploaded while the run writes (so memory
//! stays bounded), but no upload is completed before [`DestinationWriter::commit`]: until then
//! nothing is visible, and [`DestinationWriter::abort`] aborts every upload, so a failed run
//! leaves no partial output. If completing one upload fails during commit, the uploads not yet
//! completed are aborted and the objects already published are deleted, best effort.
//!
//! Files are cut per partition:
//! - `SingleFile`: one file per partition (a batch whose columns differ from the file's, which
//!   only happens with JSON sources whose schema widens, starts a new file);
//! - otherwise a new file starts when the current one reaches the target size.
//!
//! A run never writes an empty file: a partition gets a file with its first row. Partition
//! columns stay in the files (only the folder names carry their values in AppFlow-style
//! layouts, but keeping them loses nothing).
//!
//! Memory: each open file holds its encoder's buffer (for Parquet up to one row group) and less
//! than one part of pending bytes. When all open files together hold more than
//! [`MEMORY_BUDGET`], the largest one is closed early (or, with `SingleFile`, its buffered rows
//! are encoded and uploaded as far as part sizes allow).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch, UInt32Array};
use async_trait::async_trait;
use object_store::{ObjectStore, ObjectStoreExt};
use sluice_connector_api::{ConnectorError, DestinationWriter, WriteSummary};
use sluice_formats::{BatchWriter, OutputFormat, WriterOptions};
use sluice_storage::{DEFAULT_PART_SIZE, MultipartWriter};

use crate::config::Rolling;
use crate::layout::{KeyLayout, partition_path};
use crate::{object_error, object_path, s3_uri, storage_error};

/// Bytes all open files of one run may hold in memory before the largest is flushed.
pub(crate) const MEMORY_BUDGET: usize = 256 * 1024 * 1024;

/// Settings of one run's writer.
pub(crate) struct SinkSettings {
    pub bucket: String,
    pub layout: KeyLayout,
    pub format: OutputFormat,
    pub writer_options: WriterOptions,
    pub rolling: Rolling,
    pub partition_keys: Vec<String>,
    pub part_size: usize,
    pub memory_budget: usize,
    /// The bucket's folder in local-folder mode, whose empty folders an abort removes.
    pub local_bucket_dir: Option<PathBuf>,
}

struct OpenFile {
    key: String,
    writer: Box<dyn BatchWriter>,
    upload: MultipartWriter,
}

impl OpenFile {
    fn memory(&self) -> usize {
        self.writer.buffered_bytes() + self.upload.buffered_bytes()
    }
}

/// A file whose bytes are all uploaded; it becomes visible when the upload completes.
struct ClosedFile {
    key: String,
    upload: MultipartWriter,
    bytes: u64,
    rows: u64,
}

#[derive(Default)]
struct Partition {
    next_seq: u32,
    open: Option<OpenFile>,
}

/// The destination writer of one run.
pub(crate) struct S3Writer {
    store: Arc<dyn ObjectStore>,
    settings: SinkSettings,
    partitions: HashMap<String, Partition>,
    closed: Vec<ClosedFile>,
}

impl S3Writer {
    pub(crate) fn new(store: Arc<dyn ObjectStore>, settings: SinkSettings) -> Self {
        Self {
            store,
            settings,
            partitions: HashMap::new(),
            closed: Vec::new(),
        }
    }

    fn encode_error(&self, key: &str, error: sluice_formats::FormatError) -> ConnectorError {
        ConnectorError::bad_data(format!("{}: {error}", s3_uri(&self.settings.bucket, key)))
    }

    /// Splits `batch` into one batch per partition folder, in order of first appearance.
    fn split(&self, batch: &RecordBatch) -> Result<Vec<(String, RecordBatch)>, ConnectorError> {
        if self.settings.partition_keys.is_empty() {
            return Ok(vec![(String::new(), batch.clone())]);
        }
        let mut columns = Vec::with_capacity(self.settings.partition_keys.len());
        for key in &self.settings.partition_keys {
            let column = batch.column_by_name(key).ok_or_else(|| {
                ConnectorError::invalid_config(format!(
                    "partition key {key:?} is not a field of the output"
                ))
            })?;
            let text = sluice_formats::text::column_to_text(column).map_err(|error| {
                ConnectorError::bad_data(format!("partition key {key:?}: {error}"))
            })?;
            columns.push(text);
        }
        let strings: Vec<_> = columns
            .iter()
            .map(|c| c.as_any().downcast_ref::<arrow_array::StringArray>())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ConnectorError::internal("partition values were not rendered as text")
            })?;

        // Rows are grouped by their values without allocating per row; the folder name is
        // built once per group.
        let mut groups: HashMap<Vec<Option<&str>>, usize> = HashMap::new();
        let mut group_values: Vec<Vec<Option<&str>>> = Vec::new();
        let mut members: Vec<Vec<u32>> = Vec::new();
        let mut values: Vec<Option<&str>> = Vec::with_capacity(strings.len());
        for row in 0..batch.num_rows() {
            values.clear();
            values.extend(
                strings
                    .iter()
                    .map(|array| array.is_valid(row).then(|| array.value(row))),
            );
            let group = match groups.get(values.as_slice()) {
                Some(group) => *group,
                None => {
                    let group = members.len();
                    groups.insert(values.clone(), group);
                    group_values.push(values.clone());
                    members.push(Vec::new());
                    group
                }
            };
            let index = u32::try_from(row)
                .map_err(|_| ConnectorError::bad_data("batch has more than u32::MAX rows"))?;
            members[group].push(index);
        }
        let path_of = |values: &[Option<&str>]| {
            let pairs: Vec<(&str, Option<&str>)> = self
                .settings
                .partition_keys
                .iter()
                .map(String::as_str)
                .zip(values.iter().copied())
                .collect();
            partition_path(&pairs)
        };
        if members.len() == 1 {
            return Ok(vec![(path_of(&group_values[0]), batch.clone())]);
        }
        let mut out = Vec::with_capacity(members.len());
        for (values, indices) in group_values.iter().zip(members) {
            let indices = UInt32Array::from(indices);
            let part = arrow_select::take::take_record_batch(batch, &indices).map_err(|error| {
                ConnectorError::internal(format!("split by partition: {error}"))
            })?;
            out.push((path_of(values), part));
        }
        Ok(out)
    }

    async fn open_file(&mut self, partition: &str) -> Result<OpenFile, ConnectorError> {
        let state = self.partitions.entry(partition.to_owned()).or_default();
        let seq = state.next_seq;
        state.next_seq += 1;
        let key = self.settings.layout.key(partition, seq);
        let location = object_path(&self.settings.bucket, &key)?;
        let upload = MultipartWriter::start(self.store.as_ref(), location, self.settings.part_size)
            .await
            .map_err(storage_error)?;
        let writer =
            sluice_formats::new_writer(self.settings.format, &self.settings.writer_options);
        tracing::debug!(key = %key, "opened output file");
        Ok(OpenFile {
            key,
            writer,
            upload,
        })
    }

    /// Finishes the encoder, uploads its last bytes and keeps the upload for commit.
    async fn close_file(&mut self, mut file: OpenFile) -> Result<(), ConnectorError> {
        let rows = file.writer.rows_written();
        let tail = match file.writer.finish() {
            Ok(tail) => tail,
            Err(error) => {
                let error = self.encode_error(&file.key, error);
                file.upload.abort().await;
                return Err(error);
            }
        };
        if let Err(error) = file.upload.write(tail).await {
            file.upload.abort().await;
            return Err(storage_error(error));
        }
        if let Err(error) = file.upload.close().await {
            file.upload.abort().await;
            return Err(storage_error(error));
        }
        let bytes = file.upload.bytes_written();
        tracing::debug!(key = %file.key, rows, bytes, "closed output file");
        self.closed.push(ClosedFile {
            key: file.key,
            upload: file.upload,
            bytes,
            rows,
        });
        Ok(())
    }

    /// Moves encoded bytes from the encoder into the upload.
    async fn drain(file: &mut OpenFile) -> Result<(), ConnectorError> {
        let bytes = file.writer.take_flushed();
        file.upload.write(bytes).await.map_err(storage_error)
    }

    async fn write_partition(
        &mut self,
        partition: String,
        batch: RecordBatch,
    ) -> Result<(), ConnectorError> {
        // The size check runs after each write, so a whole batch could overshoot a small
        // target (a 1 MB `targetFileSize` against a 16k-row batch). Slicing the batch into
        // pieces of about an eighth of the target keeps files close to the size asked for;
        // slices share the batch's buffers, so this copies nothing.
        let chunk_rows = match self.settings.rolling {
            Rolling::AtBytes(limit) if batch.num_rows() > 1 => {
                let row_bytes = (batch.get_array_memory_size() / batch.num_rows()).max(1) as u64;
                ((limit / 8) / row_bytes).max(1) as usize
            }
            _ => batch.num_rows().max(1),
        };
        if chunk_rows >= batch.num_rows() {
            return self.write_chunk(partition, batch).await;
        }
        let mut offset = 0;
        while offset < batch.num_rows() {
            let len = chunk_rows.min(batch.num_rows() - offset);
            self.write_chunk(partition.clone(), batch.slice(offset, len))
                .await?;
            offset += len;
        }
        Ok(())
    }

    async fn write_chunk(
        &mut self,
        partition: String,
        batch: RecordBatch,
    ) -> Result<(), ConnectorError> {
        let current = self
            .partitions
            .get_mut(&partition)
            .and_then(|p| p.open.take());
        let mut file = match current {
            Some(file) if file.writer.accepts(batch.schema_ref()) => file,
            Some(file) => {
                // New columns or types (a widening JSON schema): this file is done.
                self.close_file(file).await?;
                self.open_file(&partition).await?
            }
            None => self.open_file(&partition).await?,
        };
        if let Err(error) = file.writer.write(&batch) {
            let error = self.encode_error(&file.key, error);
            file.upload.abort().await;
            return Err(error);
        }
        Self::drain(&mut file).await?;
        let full = match self.settings.rolling {
            Rolling::SingleFile => false,
            Rolling::AtBytes(limit) => {
                file.upload.bytes_written() + file.writer.buffered_bytes() as u64 >= limit
            }
        };
        if full {
            self.close_file(file).await?;
        } else if let Some(state) = self.partitions.get_mut(&partition) {
            state.open = Some(file);
        }
        Ok(())
    }

    /// Keeps the memory of all open files under the budget.
    async fn enforce_memory_budget(&mut self) -> Result<(), ConnectorError> {
        loop {
            let total: usize = self
                .partitions
                .values()
                .filter_map(|p| p.open.as_ref())
                .map(OpenFile::memory)
                .sum();
            if total <= self.settings.memory_budget {
                return Ok(());
            }
            let largest = self
                .partitions
                .iter()
                .filter_map(|(name, p)| p.open.as_ref().map(|f| (name.clone(), f.memory())))
                .max_by_key(|(_, memory)| *memory);
            let Some((name, _)) = largest else {
                return Ok(());
            };
            let Some(mut file) = self.partitions.get_mut(&name).and_then(|p| p.open.take()) else {
                return Ok(());
            };
            match self.settings.rolling {
                Rolling::AtBytes(_) => self.close_file(file).await?,
                Rolling::SingleFile => {
                    let before = file.memory();
                    if let Err(error) = file.writer.flush() {
                        let error = self.encode_error(&file.key, error);
                        file.upload.abort().await;
                        return Err(error);
                    }
                    Self::drain(&mut file).await?;
                    let after = file.memory();
                    if let Some(state) = self.partitions.get_mut(&name) {
                        state.open = Some(file);
                    }
                    if after >= before {
                        // Nothing more can be released without breaking "one file".
                        tracing::warn!(total, "open files exceed the memory budget");
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn close_all(&mut self) -> Result<(), ConnectorError> {
        let mut names: Vec<String> = self.partitions.keys().cloned().collect();
        names.sort();
        for name in names {
            if let Some(file) = self.partitions.get_mut(&name).and_then(|p| p.open.take()) {
                self.close_file(file).await?;
            }
        }
        Ok(())
    }

    async fn abort_all(&mut self) {
        let mut keys = Vec::new();
        for partition in self.partitions.values_mut() {
            if let Some(file) = partition.open.take() {
                keys.push(file.key);
                file.upload.abort().await;
            }
        }
        for file in self.closed.drain(..) {
            keys.push(file.key);
            file.upload.abort().await;
        }
        if let Some(root) = &self.settings.local_bucket_dir {
            remove_empty_folders(root, &keys);
        }
    }
}

#[async_trait]
impl DestinationWriter for S3Writer {
    async fn write(&mut self, batch: RecordBatch) -> Result<(), ConnectorError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        for (partition, part) in self.split(&batch)? {
            self.write_partition(partition, part).await?;
        }
        self.enforce_memory_budget().await
    }

    async fn commit(mut self: Box<Self>) -> Result<WriteSummary, ConnectorError> {
        if let Err(error) = self.close_all().await {
            self.abort_all().await;
            return Err(error);
        }
        let mut summary = WriteSummary::default();
        let mut published: Vec<String> = Vec::new();
        let mut pending = std::mem::take(&mut self.closed).into_iter();
        while let Some(file) = pending.next() {
            let key = file.key.clone();
            if let Err(error) = file.upload.complete().await {
                for rest in pending {
                    rest.upload.abort().await;
                }
                self.unpublish(&published).await;
                return Err(storage_error(error));
            }
            summary.records_written += file.rows;
            summary.bytes_written += file.bytes;
            published.push(key);
        }
        published.sort();
        tracing::info!(
            bucket = %self.settings.bucket,
            files = published.len(),
            records = summary.records_written,
            bytes = summary.bytes_written,
            "destination output committed"
        );
        summary.locations = published;
        Ok(summary)
    }

    async fn abort(mut self: Box<Self>) {
        self.abort_all().await;
    }
}

impl S3Writer {
    /// Deletes objects published by a commit that failed half-way.
    async fn unpublish(&mut self, keys: &[String]) {
        for key in keys {
            let Ok(location) = object_path(&self.settings.bucket, key) else {
                continue;
            };
            if let Err(error) = self.store.delete(&location).await {
                let error =
                    object_error(&s3_uri(&self.settings.bucket, key), "delete object", error);
                tracing::warn!(%error, "could not remove output of a failed commit");
            }
        }
    }
}

/// Local uploads create their folders up front; after an abort, the ones left empty are
/// removed so the bucket looks as it did (S3 has no folders to leave behind). Folders that
/// still hold anything stay.
fn remove_empty_folders(root: &std::path::Path, keys: &[String]) {
    for key in keys {
        let mut dir = root.join(key);
        while dir.pop() && dir.starts_with(root) && dir != root {
            if std::fs::remove_dir(&dir).is_err() {
                break;
            }
        }
    }
}

/// The part size used for uploads.
pub(crate) const PART_SIZE: usize = DEFAULT_PART_SIZE;
