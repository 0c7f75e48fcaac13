//! Reading every object under `bucketName/bucketPrefix` as one stream of record batches.
//!
//! - The prefix is a folder: `in` matches `in/a.csv` and `in/2024/b.csv`, not `input.csv`. A
//!   prefix naming a single object reads that object. An empty prefix reads the whole bucket.
//! - Objects are read in key order; zero-byte objects (folder markers, empty files) are skipped.
//!   The listing is held in memory to sort it (about 100 bytes per object).
//! - A prefix with no objects yields no rows; a missing bucket is a `NotFound` error.
//! - Each object is streamed through its format decoder, so memory stays bounded by the chunk
//!   and batch sizes. Local files are read in 1 MiB blocks on the blocking pool (object_store's
//!   own local stream reads 8 KiB at a time). Batches of different files, and of one JSON Lines
//!   file, may have different schemas.
//! - Errors name the object as `s3://bucket/key` (and the line, for bad data).

use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;

use arrow_array::RecordBatch;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{GetResultPayload, ObjectMeta, ObjectStore, ObjectStoreExt};
use sluice_connector_api::{BatchStream, ConnectorError, ReadStats};
use sluice_formats::{BatchDecoder, InputFormat, ReaderOptions};

use crate::{object_error, object_path, s3_uri};

/// Size of one read from a local file.
const LOCAL_READ_BYTES: usize = 1024 * 1024;

/// Lists the objects to read: non-empty objects under `prefix`, sorted by key.
pub(crate) async fn list_objects(
    store: &dyn ObjectStore,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<ObjectMeta>, ConnectorError> {
    let location = object_path(bucket, prefix)?;
    let listed = if prefix.is_empty() {
        None
    } else {
        Some(&location)
    };
    let mut objects: Vec<ObjectMeta> = store
        .list(listed)
        .try_filter(|meta| futures::future::ready(meta.size > 0))
        .try_collect()
        .await
        .map_err(|error| object_error(&s3_uri(bucket, prefix), "list objects", error))?;
    if objects.is_empty() && !prefix.is_empty() {
        // The prefix may name one object rather than a folder.
        match store.head(&location).await {
            Ok(meta) if meta.size > 0 => objects.push(meta),
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(object_error(&s3_uri(bucket, prefix), "read object", error)),
        }
    }
    objects.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(objects)
}

/// The body of one object being read.
enum Body {
    /// A local file, read in blocks on the blocking pool; `remaining` bytes are left.
    File {
        file: Option<std::fs::File>,
        remaining: u64,
    },
    Stream(BoxStream<'static, object_store::Result<Bytes>>),
}

struct OpenObject {
    uri: String,
    body: Body,
    decoder: Box<dyn BatchDecoder>,
}

impl OpenObject {
    /// The next chunk of the body, or `None` at its end.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, ConnectorError> {
        match &mut self.body {
            Body::Stream(stream) => stream
                .try_next()
                .await
                .map_err(|error| object_error(&self.uri, "read object", error)),
            Body::File { file, remaining } => {
                if *remaining == 0 {
                    return Ok(None);
                }
                let Some(mut handle) = file.take() else {
                    return Ok(None);
                };
                let want = usize::try_from(*remaining)
                    .unwrap_or(usize::MAX)
                    .min(LOCAL_READ_BYTES);
                let (handle, read) = tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0u8; want];
                    let read = read_full(&mut handle, &mut buf).map(|n| {
                        buf.truncate(n);
                        buf
                    });
                    (handle, read)
                })
                .await
                .map_err(|error| {
                    ConnectorError::internal(format!("{}: read task failed: {error}", self.uri))
                })?;
                let buf = read.map_err(|error| {
                    ConnectorError::unavailable(format!("{}: read failed: {error}", self.uri))
                })?;
                if buf.is_empty() {
                    // The file shrank while we read it; stop at what is there.
                    *remaining = 0;
                    return Ok(None);
                }
                *remaining = remaining.saturating_sub(buf.len() as u64);
                *file = Some(handle);
                Ok(Some(Bytes::from(buf)))
            }
        }
    }
}

/// Reads until `buf` is full or the file ends.
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// The state behind the batch stream.
struct Reader {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    format: InputFormat,
    options: ReaderOptions,
    stats: Arc<ReadStats>,
    objects: VecDeque<ObjectMeta>,
    current: Option<OpenObject>,
    ready: VecDeque<RecordBatch>,
}

impl Reader {
    async fn open(&mut self, meta: ObjectMeta) -> Result<OpenObject, ConnectorError> {
        let uri = s3_uri(&self.bucket, meta.location.as_ref());
        let result = self
            .store
            .get(&meta.location)
            .await
            .map_err(|error| object_error(&uri, "read object", error))?;
        let remaining = result.range.end - result.range.start;
        let body = match result.payload {
            GetResultPayload::File(file, _) => Body::File {
                file: Some(file),
                remaining,
            },
            GetResultPayload::Stream(stream) => Body::Stream(stream),
        };
        let decoder = sluice_formats::new_decoder(self.format, &uri, &self.options);
        tracing::debug!(object = %uri, size = meta.size, "reading object");
        Ok(OpenObject { uri, body, decoder })
    }

    async fn next_batch(&mut self) -> Result<Option<RecordBatch>, ConnectorError> {
        loop {
            if let Some(batch) = self.ready.pop_front() {
                return Ok(Some(batch));
            }
            let Some(object) = &mut self.current else {
                let Some(meta) = self.objects.pop_front() else {
                    return Ok(None);
                };
                self.current = Some(self.open(meta).await?);
                continue;
            };
            match object.next_chunk().await? {
                Some(chunk) => {
                    self.stats.add_bytes(chunk.len() as u64);
                    let batches = object.decoder.push(&chunk).map_err(bad_data)?;
                    self.ready.extend(batches);
                }
                None => {
                    let batches = object.decoder.finish().map_err(bad_data)?;
                    self.ready.extend(batches);
                    self.current = None;
                }
            }
        }
    }
}

fn bad_data(error: sluice_formats::FormatError) -> ConnectorError {
    ConnectorError::bad_data(error.to_string())
}

/// Streams the batches of `objects`, in order.
pub(crate) fn read_objects(
    store: Arc<dyn ObjectStore>,
    bucket: String,
    objects: Vec<ObjectMeta>,
    format: InputFormat,
    options: ReaderOptions,
    stats: Arc<ReadStats>,
) -> BatchStream {
    let reader = Reader {
        store,
        bucket,
        format,
        options,
        stats,
        objects: objects.into(),
        current: None,
        ready: VecDeque::new(),
    };
    futures::stream::try_unfold(reader, |mut reader| async move {
        Ok(reader.next_batch().await?.map(|batch| (batch, reader)))
    })
    .boxed()
}

/// Reads the start of one object and infers its schema: the CSV header, or the types of the
/// first JSON lines. Reads at most about `limit` bytes; `None` for an empty object.
pub(crate) async fn sniff_schema(
    store: &dyn ObjectStore,
    bucket: &str,
    location: &Path,
    format: InputFormat,
    limit: usize,
) -> Result<Option<arrow_schema::SchemaRef>, ConnectorError> {
    let uri = s3_uri(bucket, location.as_ref());
    let result = store
        .get(location)
        .await
        .map_err(|error| object_error(&uri, "read object", error))?;
    let options = ReaderOptions {
        batch_rows: sluice_formats::jsonl::INFER_LINES,
        ..ReaderOptions::default()
    };
    let mut decoder = sluice_formats::new_decoder(format, &uri, &options);
    let mut stream = result.into_stream();
    let mut head = Vec::new();
    let mut read = 0;
    let mut truncated = false;
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|error| object_error(&uri, "read object", error))?
    {
        read += chunk.len();
        if format == InputFormat::Csv {
            // The header is the first record: stop as soon as it is complete.
            decoder.push(&chunk).map_err(bad_data)?;
            if decoder.schema().is_some() {
                return Ok(decoder.schema());
            }
        } else {
            head.extend_from_slice(&chunk);
        }
        if read >= limit {
            truncated = true;
            break;
        }
    }
    if format == InputFormat::Csv {
        if truncated {
            return Err(ConnectorError::bad_data(format!(
                "{uri}: no complete header row in the first {limit} bytes"
            )));
        }
        decoder.finish().map_err(bad_data)?;
        return Ok(decoder.schema());
    }
    if truncated {
        // Only whole lines: the last one was cut off by the limit.
        let end = memchr_last_newline(&head);
        head.truncate(end);
    }
    decoder.push(&head).map_err(bad_data)?;
    decoder.finish().map_err(bad_data)?;
    Ok(decoder.schema())
}

fn memchr_last_newline(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
}
