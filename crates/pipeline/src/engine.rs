//! The run itself: open both ends, move batches on two threads, commit or abort.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use arrow_array::RecordBatch;
use futures::{FutureExt, StreamExt};
use sluice_api_model as model;
use sluice_connector_api::{
    BatchStream, Connector, ConnectorRegistry, DestinationWriter, ErrorLocation, NoErrorLocation,
    Profile, ReadRequest, ReadStats, RejectedRecordSink, WriteRequest, WriteSummary,
};
use sluice_transforms::TaskPlan;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::{EngineOptions, RunError, RunOutcome, RunProgress, RunSpec, RunStatus};

/// Rows per source batch. Measured on 1M rows of ~340-byte CSV -> Parquet: 16k rows per batch
/// is as fast as 32k or 64k (per-batch overhead is already negligible) while every batch in
/// flight costs ~6 MB instead of ~12-25 MB.
pub(crate) const DEFAULT_BATCH_ROWS: usize = 16 * 1024;

/// Why the run stopped before committing.
enum Stop {
    Canceled,
    Failed(RunError),
}

impl From<RunError> for Stop {
    fn from(error: RunError) -> Self {
        Self::Failed(error)
    }
}

/// How one of the two transfer threads ended.
enum StageEnd {
    /// Its input ended normally.
    Done,
    /// It was told to stop (cancellation, or the other thread failed).
    Stopped,
    /// It failed; it has already told the other thread to stop.
    Failed(RunError),
}

pub(crate) async fn execute(
    registry: &dyn ConnectorRegistry,
    spec: RunSpec,
    progress: Arc<RunProgress>,
    cancel: CancellationToken,
    options: EngineOptions,
) -> RunOutcome {
    let span = info_span!("run", flow_name = %spec.flow_name, execution_id = %spec.execution_id);
    let location = error_location(&spec);
    let rejected: Arc<dyn RejectedRecordSink> = match &location {
        None => Arc::new(NoErrorLocation),
        Some(location) => match registry.error_location(location) {
            Ok(sink) => sink,
            Err(error) => {
                let error = RunError::ErrorLocation {
                    bucket: location.bucket.clone(),
                    error,
                };
                warn!(flow_name = %spec.flow_name, %error, "run failed");
                return RunOutcome {
                    status: RunStatus::Error,
                    progress: progress.snapshot(),
                    message: Some(error.to_string()),
                    locations: Vec::new(),
                    error_locations: Vec::new(),
                    source_fields: Vec::new(),
                };
            }
        },
    };
    let run = run(
        registry,
        spec,
        Arc::clone(&rejected),
        &progress,
        &cancel,
        options,
    );
    let result = match AssertUnwindSafe(run)
        .catch_unwind()
        .instrument(span.clone())
        .await
    {
        Ok(result) => result,
        Err(panic) => Err(Stop::Failed(RunError::Internal(format!(
            "the run panicked: {}",
            panic_message(panic.as_ref())
        )))),
    };
    // Rejected records are stored whatever happened to the run: they are exactly the records
    // that did not land. Failing to store them turns a success into an error, since otherwise
    // they would be lost silently.
    let (result, error_locations) = match rejected.finish().instrument(span.clone()).await {
        Ok(written) => (result, written),
        Err(error) => {
            let error = RunError::ErrorLocation {
                bucket: location.map(|l| l.bucket).unwrap_or_default(),
                error,
            };
            match result {
                Ok(_) => (Err(Stop::Failed(error)), Vec::new()),
                Err(stop) => {
                    warn!(%error, "rejected records of a failed run were not stored");
                    (Err(stop), Vec::new())
                }
            }
        }
    };
    let source_fields = progress.source_fields();
    let snapshot = progress.snapshot();
    let _entered = span.enter();
    match result {
        Ok(summary) => {
            info!(
                records_processed = snapshot.records_processed,
                records_filtered = snapshot.records_filtered,
                bytes_processed = snapshot.bytes_processed,
                bytes_written = snapshot.bytes_written,
                files = summary.locations.len(),
                "run succeeded"
            );
            RunOutcome {
                status: RunStatus::Successful,
                progress: snapshot,
                message: None,
                locations: summary.locations,
                error_locations,
                source_fields,
            }
        }
        Err(Stop::Canceled) => {
            info!(
                records_processed = snapshot.records_processed,
                "run canceled"
            );
            RunOutcome {
                status: RunStatus::Canceled,
                progress: snapshot,
                message: Some("the run was canceled".to_owned()),
                locations: Vec::new(),
                error_locations,
                source_fields,
            }
        }
        Err(Stop::Failed(error)) => {
            warn!(domain = ?error.domain(), %error, "run failed");
            RunOutcome {
                status: RunStatus::Error,
                progress: snapshot,
                message: Some(error.to_string()),
                locations: Vec::new(),
                error_locations,
                source_fields,
            }
        }
    }
}

/// The `errorHandlingConfig` location of the destination, when it names a bucket. Every
/// destination type that has the member spells it the same way, so it is read from the
/// properties union as JSON rather than per variant.
fn error_location(spec: &RunSpec) -> Option<ErrorLocation> {
    let properties =
        serde_json::to_value(&spec.destination.destination_connector_properties).ok()?;
    let config = properties
        .as_object()?
        .values()
        .find_map(|variant| variant.get("errorHandlingConfig"))?;
    let bucket = config.get("bucketName")?.as_str()?.to_owned();
    let prefix = config
        .get("bucketPrefix")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Some(ErrorLocation {
        bucket,
        prefix,
        flow_name: spec.flow_name.clone(),
        execution_id: spec.execution_id.clone(),
    })
}

async fn run(
    registry: &dyn ConnectorRegistry,
    spec: RunSpec,
    rejected: Arc<dyn RejectedRecordSink>,
    progress: &Arc<RunProgress>,
    cancel: &CancellationToken,
    options: EngineOptions,
) -> Result<WriteSummary, Stop> {
    let plan =
        TaskPlan::compile(&spec.tasks, spec.source.connector_type).map_err(RunError::Plan)?;
    let (source, source_name) = connector_for(
        registry,
        spec.source.connector_type,
        spec.source_profile.as_ref(),
        "source",
    )?;
    let (destination, destination_name) = connector_for(
        registry,
        spec.destination.connector_type,
        spec.destination_profile.as_ref(),
        "destination",
    )?;

    let stats = Arc::new(ReadStats::default());
    let read_request = ReadRequest {
        flow_name: spec.flow_name.clone(),
        execution_id: spec.execution_id.clone(),
        source: spec.source,
        profile: spec.source_profile,
        projection: plan.projection(),
        filters: plan.filters(),
        window: spec.window,
        batch_rows: options.batch_rows.max(1),
        stats: Arc::clone(&stats),
    };
    let write_request = WriteRequest {
        flow_name: spec.flow_name,
        execution_id: spec.execution_id,
        destination: spec.destination,
        profile: spec.destination_profile,
        schema_version: spec.schema_version,
        run_started_at: spec.started_at,
        partition_keys: plan.partition_keys().to_vec(),
        rejected,
    };

    let stream = unless_canceled(cancel, source.read(read_request))
        .await?
        .map_err(|error| RunError::Source {
            connector: source_name.clone(),
            error,
        })?;
    let writer = unless_canceled(cancel, destination.open_writer(write_request))
        .await?
        .map_err(|error| RunError::Destination {
            connector: destination_name.clone(),
            error,
        })?;
    debug!("source and destination open");

    let transfer = Transfer {
        plan: Arc::new(plan),
        progress: Arc::clone(progress),
        stats,
        cancel: cancel.clone(),
        stop: cancel.child_token(),
        source_name,
        destination_name: destination_name.clone(),
        channel_batches: options.channel_batches.max(1),
    };
    let (writer, transferred) = transfer.run(stream, writer).await;

    let Some(writer) = writer else {
        // The sink thread vanished with the writer (runtime shutdown); nothing to abort.
        return Err(transferred.err().unwrap_or_else(|| {
            Stop::Failed(RunError::Internal(
                "the destination writer was lost".to_owned(),
            ))
        }));
    };
    if let Err(stop) = transferred {
        writer.abort().await;
        return Err(stop);
    }
    if cancel.is_cancelled() {
        writer.abort().await;
        return Err(Stop::Canceled);
    }
    // Commit is not raced against cancellation: once it starts, output may already be visible
    // and reporting the run as canceled would be a lie.
    let summary = writer.commit().await.map_err(|error| RunError::Commit {
        connector: destination_name,
        error,
    })?;
    progress.set_bytes_written(summary.bytes_written);
    progress.set_put_failures(summary.put_failures);
    Ok(summary)
}

/// Finds the connector for one end of the flow, and the name used in messages.
fn connector_for(
    registry: &dyn ConnectorRegistry,
    connector_type: model::ConnectorType,
    profile: Option<&Profile>,
    role: &'static str,
) -> Result<(Arc<dyn Connector>, String), RunError> {
    let label = profile.and_then(|profile| profile.connector_label.as_deref());
    let name = match (connector_type, label) {
        (model::ConnectorType::CustomConnector, Some(label)) => label.to_owned(),
        _ => connector_type.to_string(),
    };
    match registry.get(connector_type, label) {
        Some(connector) => Ok((connector, name)),
        None => Err(RunError::ConnectorUnavailable {
            connector: name,
            role,
        }),
    }
}

/// Awaits `future` unless the run is canceled first.
async fn unless_canceled<T>(
    cancel: &CancellationToken,
    future: impl Future<Output = T>,
) -> Result<T, Stop> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(Stop::Canceled),
        value = future => Ok(value),
    }
}

/// The moving part of a run: a source thread and a sink thread joined by a bounded channel.
struct Transfer {
    plan: Arc<TaskPlan>,
    progress: Arc<RunProgress>,
    stats: Arc<ReadStats>,
    /// The run's cancellation token.
    cancel: CancellationToken,
    /// Child of `cancel`; either thread cancels it when it fails so the other stops promptly.
    stop: CancellationToken,
    source_name: String,
    destination_name: String,
    channel_batches: usize,
}

impl Transfer {
    /// Moves every batch from `stream` through the plan into `writer`. Returns the writer (so
    /// the caller can commit or abort it) unless the sink thread could not hand it back.
    async fn run(
        &self,
        stream: BatchStream,
        mut writer: Box<dyn DestinationWriter>,
    ) -> (Option<Box<dyn DestinationWriter>>, Result<(), Stop>) {
        let (sender, receiver) = mpsc::channel::<RecordBatch>(self.channel_batches);
        let handle = Handle::current();
        // If the caller drops the run future, the threads must not keep reading and writing
        // for a run nobody waits for.
        let _stop_on_drop = self.stop.clone().drop_guard();

        let source_thread = {
            let handle = handle.clone();
            let progress = Arc::clone(&self.progress);
            let stats = Arc::clone(&self.stats);
            let stop = self.stop.clone();
            let name = self.source_name.clone();
            let span = tracing::Span::current();
            tokio::task::spawn_blocking(move || {
                let _entered = span.enter();
                let pump = pump_source(stream, sender, &progress, &stats, &stop, &name);
                let ended = std::panic::catch_unwind(AssertUnwindSafe(|| handle.block_on(pump)));
                ended.unwrap_or_else(|panic| {
                    stop.cancel();
                    StageEnd::Failed(RunError::Internal(format!(
                        "{name} source panicked: {}",
                        panic_message(panic.as_ref())
                    )))
                })
            })
        };
        let sink_thread = {
            let plan = Arc::clone(&self.plan);
            let progress = Arc::clone(&self.progress);
            let stop = self.stop.clone();
            let name = self.destination_name.clone();
            let span = tracing::Span::current();
            tokio::task::spawn_blocking(move || {
                let _entered = span.enter();
                let drain = drain_into(&mut *writer, receiver, &plan, &progress, &stop, &name);
                let ended = std::panic::catch_unwind(AssertUnwindSafe(|| handle.block_on(drain)));
                let ended = ended.unwrap_or_else(|panic| {
                    stop.cancel();
                    StageEnd::Failed(RunError::Internal(format!(
                        "{name} destination panicked: {}",
                        panic_message(panic.as_ref())
                    )))
                });
                (writer, ended)
            })
        };

        let source_end = source_thread.await.unwrap_or_else(|error| {
            StageEnd::Failed(RunError::Internal(format!(
                "the source thread failed: {error}"
            )))
        });
        let (writer, sink_end) = match sink_thread.await {
            Ok((writer, ended)) => (Some(writer), ended),
            Err(error) => (
                None,
                StageEnd::Failed(RunError::Internal(format!(
                    "the sink thread failed: {error}"
                ))),
            ),
        };
        self.progress.set_bytes_processed(self.stats.bytes_read());
        (writer, self.settle(source_end, sink_end))
    }

    /// Combines both threads' endings into the transfer's result. Cancellation by the caller
    /// wins; otherwise the upstream failure is reported first.
    fn settle(&self, source_end: StageEnd, sink_end: StageEnd) -> Result<(), Stop> {
        if self.cancel.is_cancelled() {
            return Err(Stop::Canceled);
        }
        match (source_end, sink_end) {
            (StageEnd::Failed(error), _) | (_, StageEnd::Failed(error)) => Err(error.into()),
            (StageEnd::Done, StageEnd::Done) => Ok(()),
            _ => Err(Stop::Failed(RunError::Internal(
                "a transfer thread stopped without a reason".to_owned(),
            ))),
        }
    }
}

/// Source thread: polls the stream (which reads and decodes) and feeds the channel.
async fn pump_source(
    mut stream: BatchStream,
    sender: mpsc::Sender<RecordBatch>,
    progress: &RunProgress,
    stats: &ReadStats,
    stop: &CancellationToken,
    name: &str,
) -> StageEnd {
    let mut last_schema = None;
    loop {
        let next = tokio::select! {
            biased;
            () = stop.cancelled() => return StageEnd::Stopped,
            next = stream.next() => next,
        };
        progress.set_bytes_processed(stats.bytes_read());
        let batch = match next {
            None => return StageEnd::Done,
            Some(Ok(batch)) => batch,
            Some(Err(error)) => {
                stop.cancel();
                return StageEnd::Failed(RunError::Source {
                    connector: name.to_owned(),
                    error,
                });
            }
        };
        progress.add_records_processed(batch.num_rows() as u64);
        if !last_schema
            .as_ref()
            .is_some_and(|schema| Arc::ptr_eq(schema, batch.schema_ref()))
        {
            progress.note_source_fields(&batch);
            last_schema = Some(batch.schema());
        }
        if batch.num_rows() == 0 {
            continue;
        }
        let sent = tokio::select! {
            biased;
            () = stop.cancelled() => return StageEnd::Stopped,
            sent = sender.send(batch) => sent,
        };
        if sent.is_err() {
            // The sink hung up, which it only does after failing and cancelling `stop`.
            return StageEnd::Stopped;
        }
    }
}

/// Sink thread: applies the tasks to each batch and writes the result.
async fn drain_into(
    writer: &mut dyn DestinationWriter,
    mut receiver: mpsc::Receiver<RecordBatch>,
    plan: &TaskPlan,
    progress: &RunProgress,
    stop: &CancellationToken,
    name: &str,
) -> StageEnd {
    loop {
        let received = tokio::select! {
            biased;
            () = stop.cancelled() => return StageEnd::Stopped,
            received = receiver.recv() => received,
        };
        let Some(batch) = received else {
            return StageEnd::Done;
        };
        let output = match plan.apply(&batch) {
            Ok(output) => output,
            Err(error) => {
                stop.cancel();
                return StageEnd::Failed(RunError::Transform(error));
            }
        };
        drop(batch);
        progress.add_records_filtered(output.filtered);
        if output.batch.num_rows() == 0 {
            continue;
        }
        let written = tokio::select! {
            biased;
            () = stop.cancelled() => return StageEnd::Stopped,
            written = writer.write(output.batch) => written,
        };
        if let Err(error) = written {
            stop.cancel();
            return StageEnd::Failed(RunError::Destination {
                connector: name.to_owned(),
                error,
            });
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "unknown panic".to_owned()
    }
}
