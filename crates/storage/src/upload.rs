//! A multipart upload that stays invisible until it is explicitly completed.
//!
//! [`MultipartWriter`] buffers written bytes and uploads them as fixed-size parts while the
//! caller keeps writing, so memory stays bounded by the part size times the number of uploads
//! in flight. [`MultipartWriter::close`] uploads the remainder as the last part but does *not*
//! complete the upload: completion is a separate step ([`MultipartWriter::complete`]) so that a
//! caller can prepare many objects and publish them all at once, or abort them all.
//!
//! `object_store::WriteMultipart` was not used because its `finish` both uploads the last part
//! and completes the upload, which would force every unfinished file to keep its tail in memory
//! until the whole run commits.

use std::collections::VecDeque;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload};
use tokio::task::JoinSet;

use crate::StorageError;

/// The smallest part size S3 accepts for every part but the last.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// The default part size: comfortably above the S3 minimum, small enough to keep memory low.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

/// How many parts of one upload may be in flight at once.
const MAX_PARTS_IN_FLIGHT: usize = 2;

/// Writes one object as a multipart upload; see the module documentation.
#[derive(Debug)]
pub struct MultipartWriter {
    location: Path,
    upload: Box<dyn MultipartUpload>,
    part_size: usize,
    pending: VecDeque<Bytes>,
    pending_len: usize,
    tasks: JoinSet<Result<(), object_store::Error>>,
    bytes_written: u64,
    parts: usize,
    closed: bool,
}

impl MultipartWriter {
    /// Starts a multipart upload of `location` in `store`. Parts are `part_size` bytes
    /// (raised to [`MIN_PART_SIZE`] if smaller).
    ///
    /// # Errors
    /// [`StorageError::ObjectStore`] when the store refuses to start the upload.
    pub async fn start(
        store: &dyn ObjectStore,
        location: Path,
        part_size: usize,
    ) -> Result<Self, StorageError> {
        let upload = store.put_multipart(&location).await.map_err(|source| {
            StorageError::object_store(format!("start upload of {location}"), source)
        })?;
        Ok(Self {
            location,
            upload,
            part_size: part_size.max(MIN_PART_SIZE),
            pending: VecDeque::new(),
            pending_len: 0,
            tasks: JoinSet::new(),
            bytes_written: 0,
            parts: 0,
            closed: false,
        })
    }

    /// The object being written.
    pub fn location(&self) -> &Path {
        &self.location
    }

    /// Bytes accepted so far (uploaded or buffered).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Bytes buffered in memory, waiting to fill a part.
    pub fn buffered_bytes(&self) -> usize {
        self.pending_len
    }

    /// Appends `data`, uploading every full part it completes.
    ///
    /// # Errors
    /// [`StorageError::ObjectStore`] when a part upload failed, [`StorageError::Closed`] after
    /// [`Self::close`].
    pub async fn write(&mut self, data: Bytes) -> Result<(), StorageError> {
        if self.closed {
            return Err(StorageError::Closed {
                location: self.location.to_string(),
            });
        }
        if data.is_empty() {
            return Ok(());
        }
        self.bytes_written += data.len() as u64;
        self.pending_len += data.len();
        self.pending.push_back(data);
        while self.pending_len >= self.part_size {
            let part = self.take_part(self.part_size);
            self.upload_part(part).await?;
        }
        Ok(())
    }

    /// Uploads whatever is buffered as the last part and waits for every part to land. The
    /// object is still invisible afterwards; call [`Self::complete`] to publish it.
    ///
    /// # Errors
    /// [`StorageError::ObjectStore`] when a part upload failed.
    pub async fn close(&mut self) -> Result<(), StorageError> {
        if self.closed {
            return Ok(());
        }
        // S3 refuses to complete an upload without parts, so an empty object gets one empty part.
        if self.pending_len > 0 || self.parts == 0 {
            let part = self.take_part(self.pending_len);
            self.upload_part(part).await?;
        }
        while let Some(joined) = self.tasks.join_next().await {
            self.check_joined(joined)?;
        }
        self.closed = true;
        Ok(())
    }

    /// Closes the upload if needed and publishes the object.
    ///
    /// # Errors
    /// [`StorageError::ObjectStore`] when a part or the completion failed; the upload is then
    /// aborted on a best-effort basis.
    pub async fn complete(mut self) -> Result<(), StorageError> {
        if let Err(error) = self.close().await {
            self.abort().await;
            return Err(error);
        }
        let location = self.location.to_string();
        if let Err(source) = self.upload.complete().await {
            self.abort().await;
            return Err(StorageError::object_store(
                format!("complete upload of {location}"),
                source,
            ));
        }
        Ok(())
    }

    /// Discards the upload: cancels parts in flight and asks the store to drop uploaded parts.
    /// Failures are logged, not returned, because abort runs on paths that are already failing.
    pub async fn abort(mut self) {
        self.tasks.shutdown().await;
        self.pending.clear();
        self.pending_len = 0;
        if let Err(error) = self.upload.abort().await {
            tracing::warn!(location = %self.location, %error, "could not abort multipart upload");
        }
    }

    /// Removes the first `len` buffered bytes as one payload, splitting a chunk if needed.
    fn take_part(&mut self, len: usize) -> PutPayload {
        let mut chunks = Vec::new();
        let mut remaining = len;
        while remaining > 0 {
            let Some(mut chunk) = self.pending.pop_front() else {
                break;
            };
            if chunk.len() > remaining {
                let rest = chunk.split_off(remaining);
                self.pending.push_front(rest);
            }
            remaining -= chunk.len();
            chunks.push(chunk);
        }
        let taken = len - remaining;
        self.pending_len -= taken;
        chunks.into_iter().collect()
    }

    /// Starts uploading one part in the background, first waiting for a free slot so that at
    /// most [`MAX_PARTS_IN_FLIGHT`] parts are held in memory at once.
    async fn upload_part(&mut self, part: PutPayload) -> Result<(), StorageError> {
        while self.tasks.len() >= MAX_PARTS_IN_FLIGHT {
            match self.tasks.join_next().await {
                Some(joined) => self.check_joined(joined)?,
                None => break,
            }
        }
        self.parts += 1;
        self.tasks.spawn(self.upload.put_part(part));
        Ok(())
    }

    fn check_joined(
        &self,
        joined: Result<Result<(), object_store::Error>, tokio::task::JoinError>,
    ) -> Result<(), StorageError> {
        let context = || format!("upload part of {}", self.location);
        match joined {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(StorageError::object_store(context(), source)),
            Err(join_error) => Err(StorageError::object_store(context(), join_error.into())),
        }
    }
}
