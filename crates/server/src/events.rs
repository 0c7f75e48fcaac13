//! Event-triggered flows: sources that publish events, polled for active `Event` flows.
//!
//! An [`EventSource`] watches the source of a flow and reports what happened since a
//! persisted mark (the `event_mark` column of the flow's schedule record). Every event starts
//! one run, like the signed webhook does (`api::ops::trigger_flow_webhook`). Today's source is
//! [`S3Objects`]: a new object under the flow's bucket prefix starts a run that reads only that
//! object. A Salesforce Change Data Capture subscriber would be another [`EventSource`], its
//! mark the replay id of the last event handled.
//!
//! # S3 object-created events without duplicates or gaps
//!
//! The listing is polled (every `event_poll_interval`). S3's `LastModified` has second
//! precision and is the *start* of a multipart upload, so an object can show up after others
//! with a later timestamp. The mark therefore keeps a horizon and the keys seen at or after
//! it: an object is new when its last-modified is at or after the horizon and its key was not
//! seen. The horizon trails the newest object by [`LATE_ARRIVAL_GRACE`], so an object that
//! appears up to that much "in the past" is still caught, and none is started twice.
//!
//! The mark moves when a run is started, not when it succeeds: an event starts one run, as in
//! AppFlow, and a failing object does not start a new failing run at every poll. Its failed
//! run is in the execution records; uploading the object again starts a new one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use futures::TryStreamExt as _;
use serde::{Deserialize, Serialize};
use sluice_api_model as model;
use sluice_metastore::{MetadataStore, ScheduleUpdate, StoreError};
use sluice_types::SharedClock;
use tokio_util::sync::CancellationToken;

use crate::documents::FlowDocument;
use crate::runs::{RunInputs, RunManager, set_last_run_locked};

/// How far behind the newest object the S3 horizon trails.
pub const LATE_ARRIVAL_GRACE: TimeDelta = TimeDelta::minutes(15);

/// One event: a reason to run the flow once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// For object-created events, the one object the run reads.
    pub object_key: Option<String>,
}

/// What a poll found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Polled {
    /// New events, oldest first.
    pub events: Vec<Event>,
    /// The mark once they are all handled.
    pub mark: serde_json::Value,
}

/// A source that publishes events for the flows reading from it.
#[async_trait]
pub(crate) trait EventSource: Send + Sync + std::fmt::Debug {
    /// Whether this source produces the events of a flow reading from `source`.
    fn watches(&self, source: &model::SourceFlowConfig) -> bool;

    /// The events since `mark`. Without a mark (a flow just activated) nothing that already
    /// exists is an event: the answer has no events and the mark of "now".
    async fn poll(
        &self,
        source: &model::SourceFlowConfig,
        mark: Option<&serde_json::Value>,
    ) -> Result<Polled, String>;
}

/// The S3 mark: everything last modified before `horizon` was handled, and so were the
/// `seen` keys (with their last-modified time) at or after it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ObjectMark {
    pub horizon: Option<DateTime<Utc>>,
    pub seen: BTreeMap<String, DateTime<Utc>>,
}

/// The objects of `listing` (key, last-modified) that are new against `mark`, oldest first,
/// and the mark after them. `initial` (no mark yet) reports nothing new.
pub(crate) fn new_objects(
    mark: &ObjectMark,
    listing: &[(String, DateTime<Utc>)],
    initial: bool,
) -> (Vec<String>, ObjectMark) {
    let mut fresh: Vec<(DateTime<Utc>, String)> = listing
        .iter()
        .filter(|(key, modified)| {
            mark.horizon.is_none_or(|horizon| *modified >= horizon) && !mark.seen.contains_key(key)
        })
        .map(|(key, modified)| (*modified, key.clone()))
        .collect();
    fresh.sort();
    let mut seen = mark.seen.clone();
    seen.extend(fresh.iter().map(|(modified, key)| (key.clone(), *modified)));
    let newest = listing.iter().map(|(_, modified)| *modified).max();
    let horizon = match (mark.horizon, newest) {
        (Some(horizon), Some(newest)) => Some(horizon.max(newest - LATE_ARRIVAL_GRACE)),
        (None, Some(newest)) => Some(newest - LATE_ARRIVAL_GRACE),
        (horizon, None) => horizon,
    };
    if let Some(horizon) = horizon {
        seen.retain(|_, modified| *modified >= horizon);
    }
    let events = if initial {
        Vec::new()
    } else {
        fresh.into_iter().map(|(_, key)| key).collect()
    };
    (events, ObjectMark { horizon, seen })
}

/// Object-created events of S3 sources, from the bucket listing.
#[derive(Debug)]
pub(crate) struct S3Objects {
    pub storage: Arc<sluice_storage::Storage>,
}

impl S3Objects {
    fn location(source: &model::SourceFlowConfig) -> Option<(String, String)> {
        let s3 = source.source_connector_properties.s3.as_ref()?;
        Some((
            s3.bucket_name.clone(),
            s3.bucket_prefix
                .as_deref()
                .unwrap_or_default()
                .trim_matches('/')
                .to_string(),
        ))
    }
}

#[async_trait]
impl EventSource for S3Objects {
    fn watches(&self, source: &model::SourceFlowConfig) -> bool {
        source.connector_type == model::ConnectorType::S3 && Self::location(source).is_some()
    }

    async fn poll(
        &self,
        source: &model::SourceFlowConfig,
        mark: Option<&serde_json::Value>,
    ) -> Result<Polled, String> {
        let (bucket, prefix) = Self::location(source).ok_or("the source has no S3 properties")?;
        let store = self
            .storage
            .bucket(&bucket)
            .map_err(|error| error.to_string())?;
        let location = object_store::path::Path::parse(&prefix)
            .map_err(|error| format!("invalid bucket prefix s3://{bucket}/{prefix}: {error}"))?;
        let listed: Vec<(String, DateTime<Utc>)> = store
            .list((!prefix.is_empty()).then_some(&location))
            .try_filter(|meta| futures::future::ready(meta.size > 0))
            .map_ok(|meta| (meta.location.to_string(), meta.last_modified))
            .try_collect()
            .await
            .map_err(|error| format!("cannot list s3://{bucket}/{prefix}: {error}"))?;
        let current: ObjectMark = match mark {
            Some(value) => serde_json::from_value(value.clone())
                .map_err(|error| format!("stored event mark is unreadable: {error}"))?,
            None => ObjectMark::default(),
        };
        let (keys, next) = new_objects(&current, &listed, mark.is_none());
        Ok(Polled {
            events: keys
                .into_iter()
                .map(|key| Event {
                    object_key: Some(key),
                })
                .collect(),
            mark: serde_json::to_value(next).map_err(|error| error.to_string())?,
        })
    }
}

/// Polls every event source for the active event flows and starts their runs.
#[derive(Debug, Clone)]
pub(crate) struct EventPoller {
    pub store: Arc<dyn MetadataStore>,
    pub runs: RunManager,
    pub flow_lock: Arc<tokio::sync::Mutex<()>>,
    pub sources: Arc<Vec<Arc<dyn EventSource>>>,
    pub clock: SharedClock,
}

impl EventPoller {
    /// Polls every `interval` until `stop`.
    pub(crate) async fn run(self, interval: Duration, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => self.poll_all().await,
            }
        }
    }

    /// One round over every active event flow.
    pub(crate) async fn poll_all(&self) {
        let flows = match self
            .store
            .list_flows_by_status(model::FlowStatus::Active.as_str())
            .await
        {
            Ok(flows) => flows,
            Err(error) => {
                tracing::warn!(%error, "cannot list the active flows for event polling");
                return;
            }
        };
        for record in flows {
            if record.trigger_type != model::TriggerType::Event.as_str() {
                continue;
            }
            if let Err(message) = self.poll_flow(&record.name).await {
                tracing::warn!(flow_name = %record.name, error = %message, "event poll failed");
            }
        }
    }

    /// Records the mark of "now" for a flow just activated, so that only objects created from
    /// now on start runs.
    pub(crate) async fn prime(&self, document: &FlowDocument) -> Result<(), String> {
        let Some((source, definition)) = self.source_of(document) else {
            return Ok(());
        };
        let polled = source.poll(&definition.source_flow_config, None).await?;
        self.save_mark(document.name(), polled.mark)
            .await
            .map_err(|error| error.to_string())
    }

    fn source_of(
        &self,
        document: &FlowDocument,
    ) -> Option<(Arc<dyn EventSource>, model::UpdateFlowRequest)> {
        let definition = document.as_update_request().ok()?;
        let source = self
            .sources
            .iter()
            .find(|source| source.watches(&definition.source_flow_config))?
            .clone();
        Some((source, definition))
    }

    async fn poll_flow(&self, flow_name: &str) -> Result<(), String> {
        // Under the flow lock, so a StopFlow or UpdateFlow in between is seen, and two polls of
        // one flow never start the same event twice.
        let _guard = self.flow_lock.lock().await;
        let Some(record) = self
            .store
            .get_flow(flow_name)
            .await
            .map_err(|error| error.to_string())?
        else {
            return Ok(());
        };
        let document = FlowDocument::from_record(&record).map_err(|error| error.message)?;
        if document.status() != model::FlowStatus::Active
            || document.trigger_type() != model::TriggerType::Event
        {
            return Ok(());
        }
        let Some((source, definition)) = self.source_of(&document) else {
            return Ok(());
        };
        let mark = self
            .store
            .get_schedule(flow_name)
            .await
            .map_err(|error| error.to_string())?
            .and_then(|schedule| schedule.event_mark);
        let polled = source
            .poll(&definition.source_flow_config, mark.as_ref())
            .await?;
        for event in &polled.events {
            let inputs = RunInputs {
                window: None,
                object_key: event.object_key.clone(),
            };
            match self.runs.start(&document, inputs).await {
                Ok((execution_id, started_at)) => {
                    tracing::info!(
                        flow_name,
                        object_key = event.object_key.as_deref().unwrap_or_default(),
                        %execution_id,
                        "event started a run"
                    );
                    let details = model::ExecutionDetails {
                        most_recent_execution_message: None,
                        most_recent_execution_status: Some(model::ExecutionStatus::InProgress),
                        most_recent_execution_time: Some(started_at.into()),
                    };
                    set_last_run_locked(self.store.as_ref(), flow_name, details).await;
                }
                Err(error) => {
                    // The mark is not saved: the remaining events are tried again next poll.
                    return Err(format!(
                        "cannot start a run for an event: {}",
                        error.message
                    ));
                }
            }
        }
        if mark.as_ref() != Some(&polled.mark) {
            self.save_mark(flow_name, polled.mark)
                .await
                .map_err(|error| error.to_string())?;
        }
        Ok(())
    }

    async fn save_mark(&self, flow_name: &str, mark: serde_json::Value) -> Result<(), StoreError> {
        let update = ScheduleUpdate {
            event_mark: Some(mark),
            ..ScheduleUpdate::default()
        };
        match self
            .store
            .update_schedule(flow_name, &update, self.clock.now())
            .await
        {
            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn listing(items: &[(&str, &str)]) -> Vec<(String, DateTime<Utc>)> {
        items
            .iter()
            .map(|(key, time)| (key.to_string(), at(time)))
            .collect()
    }

    #[test]
    fn existing_objects_are_not_events() {
        let objects = listing(&[("in/a.csv", "2030-01-01T00:00:00Z")]);
        let (events, mark) = new_objects(&ObjectMark::default(), &objects, true);
        assert!(events.is_empty());
        assert_eq!(mark.horizon, Some(at("2029-12-31T23:45:00Z")));
        assert!(mark.seen.contains_key("in/a.csv"));
        // Polled again: still nothing.
        let (events, again) = new_objects(&mark, &objects, false);
        assert!(events.is_empty());
        assert_eq!(again, mark);
    }

    #[test]
    fn same_second_and_late_objects_start_exactly_one_run_each() {
        let first = listing(&[("in/b.csv", "2030-01-01T00:00:00Z")]);
        let (_, mark) = new_objects(&ObjectMark::default(), &first, true);
        // Same second, smaller key; and a multipart upload that began earlier.
        let second = listing(&[
            ("in/b.csv", "2030-01-01T00:00:00Z"),
            ("in/a.csv", "2030-01-01T00:00:00Z"),
            ("in/ü-late.csv", "2029-12-31T23:50:00Z"),
            ("in/c.csv", "2030-01-01T00:00:01Z"),
        ]);
        let (events, mark) = new_objects(&mark, &second, false);
        assert_eq!(events, ["in/ü-late.csv", "in/a.csv", "in/c.csv"]);
        let (events, mark) = new_objects(&mark, &second, false);
        assert!(events.is_empty(), "{events:?}");
        // Keys far behind the horizon are forgotten, and objects that old are not events.
        let third = listing(&[
            ("in/c.csv", "2030-01-01T00:00:01Z"),
            ("in/d.csv", "2030-01-01T01:00:00Z"),
            ("in/too-late.csv", "2030-01-01T00:30:00Z"),
        ]);
        let (events, mark) = new_objects(&mark, &third, false);
        assert_eq!(events, ["in/too-late.csv", "in/d.csv"]);
        assert_eq!(mark.horizon, Some(at("2030-01-01T00:45:00Z")));
        assert_eq!(mark.seen.keys().collect::<Vec<_>>(), ["in/d.csv"]);
        let fourth = listing(&[("in/old.csv", "2030-01-01T00:10:00Z")]);
        let (events, _) = new_objects(&mark, &fourth, false);
        assert!(events.is_empty());
    }

    #[test]
    fn an_empty_prefix_keeps_its_mark() {
        let (events, mark) = new_objects(&ObjectMark::default(), &[], true);
        assert!(events.is_empty());
        assert_eq!(mark, ObjectMark::default());
        let objects = listing(&[("in/first.csv", "2030-01-01T00:00:00Z")]);
        let (events, _) = new_objects(&mark, &objects, false);
        assert_eq!(events, ["in/first.csv"]);
    }

    #[test]
    fn the_mark_round_trips_through_json() {
        let mark = ObjectMark {
            horizon: Some(at("2030-01-01T00:00:00.123456789Z")),
            seen: BTreeMap::from([("in/é.csv".to_string(), at("2030-01-01T00:00:01Z"))]),
        };
        let value = serde_json::to_value(&mark).unwrap();
        assert_eq!(serde_json::from_value::<ObjectMark>(value).unwrap(), mark);
    }
}
