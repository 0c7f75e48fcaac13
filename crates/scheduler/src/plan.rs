//! A scheduled flow's trigger settings, resolved once into a [`SchedulePlan`].
//!
//! The plan answers the three questions the scheduler asks about a flow, as pure functions of
//! the flow's persisted state and the current time:
//!
//! * [`SchedulePlan::next_fire`]: when to wake up for it next;
//! * [`SchedulePlan::due`]: whether a run is due now, and for which tick. After downtime this
//!   is the latest tick that was missed, so a flow catches up with **one** run, never one per
//!   missed tick; the incremental window of that run still reaches back to the last success,
//!   so the gap is covered;
//! * [`SchedulePlan::window`]: which slice of the source an incremental run reads.
//!
//! Ticks are bounded by `scheduleStartTime` and `scheduleEndTime` (both inclusive) and by the
//! activation time: activating a flow never runs the ticks that passed before it was active.
//! A rate without a start time counts its periods from the activation, and fires right away.

use std::ops::RangeInclusive;

use chrono::{DateTime, TimeDelta, Utc};
use sluice_api_model::{DataPullMode, ScheduledTriggerProperties};
use sluice_domain::DomainError;
use sluice_domain::schedule::{self, Schedule};

use crate::window::{self, Window};

/// Where the members of the plan sit in a flow definition, for error messages.
const SCHEDULED: &str = "triggerConfig.triggerProperties.Scheduled";

/// Allowed `scheduleOffset` values, in seconds (at most ten hours).
pub const SCHEDULE_OFFSET_SECONDS: RangeInclusive<i64> = 0..=36_000;

/// Allowed `flowErrorDeactivationThreshold` values.
pub const DEACTIVATION_THRESHOLD: RangeInclusive<i32> = 1..=100;

/// A scheduled flow's trigger settings, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulePlan {
    /// The parsed `scheduleExpression`.
    pub schedule: Schedule,
    /// `scheduleStartTime`: no tick before it; a rate's periods count from it.
    pub start: Option<DateTime<Utc>>,
    /// `scheduleEndTime`: no tick after it.
    pub end: Option<DateTime<Utc>>,
    /// `scheduleOffset`: how far incremental windows are shifted back.
    pub offset: TimeDelta,
    /// `firstExecutionFrom`: where the first incremental window starts.
    pub first_execution_from: Option<DateTime<Utc>>,
    /// `flowErrorDeactivationThreshold`: consecutive failed runs after which the flow is
    /// suspended. `None` never suspends it (AppFlow documents no default).
    pub error_threshold: Option<u32>,
    /// Whether `dataPullMode` is `Incremental` (runs get a [`Window`]) rather than `Complete`.
    pub incremental: bool,
    /// `timezone`, kept as the descriptive label AppFlow treats it as: fire times are computed
    /// in UTC.
    pub timezone: Option<String>,
}

/// A stored trigger definition that cannot be scheduled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The schedule expression does not parse.
    #[error(transparent)]
    Schedule(#[from] DomainError),
    /// A numeric member is out of its range.
    #[error("{field} must be between {min} and {max}, got {value}")]
    OutOfRange {
        /// Path of the member.
        field: String,
        /// The value given.
        value: i64,
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// `scheduleEndTime` is not after `scheduleStartTime`.
    #[error("{field} {end} must be after scheduleStartTime {start}")]
    EndNotAfterStart {
        /// Path of `scheduleEndTime`.
        field: String,
        /// `scheduleStartTime`.
        start: DateTime<Utc>,
        /// `scheduleEndTime`.
        end: DateTime<Utc>,
    },
}

impl PlanError {
    /// The path of the offending member.
    pub fn field(&self) -> &str {
        match self {
            Self::Schedule(error) => error.field(),
            Self::OutOfRange { field, .. } | Self::EndNotAfterStart { field, .. } => field,
        }
    }
}

fn in_range<T: Copy + PartialOrd + Into<i64>>(
    member: &str,
    value: T,
    range: &RangeInclusive<T>,
) -> Result<T, PlanError> {
    if range.contains(&value) {
        return Ok(value);
    }
    Err(PlanError::OutOfRange {
        field: format!("{SCHEDULED}.{member}"),
        value: value.into(),
        min: (*range.start()).into(),
        max: (*range.end()).into(),
    })
}

impl TryFrom<&ScheduledTriggerProperties> for SchedulePlan {
    type Error = PlanError;

    fn try_from(properties: &ScheduledTriggerProperties) -> Result<Self, PlanError> {
        let schedule =
            schedule::parse(&properties.schedule_expression).map_err(|error| match error {
                DomainError::InvalidSchedule {
                    expression, reason, ..
                } => DomainError::InvalidSchedule {
                    field: format!("{SCHEDULED}.scheduleExpression"),
                    expression,
                    reason,
                },
                other => other,
            })?;
        let offset = match properties.schedule_offset {
            Some(seconds) => in_range("scheduleOffset", seconds, &SCHEDULE_OFFSET_SECONDS)?,
            None => 0,
        };
        let error_threshold = properties
            .flow_error_deactivation_threshold
            .map(|value| {
                in_range(
                    "flowErrorDeactivationThreshold",
                    value,
                    &DEACTIVATION_THRESHOLD,
                )
            })
            .transpose()?
            // The range check above makes the value positive.
            .map(i32::unsigned_abs);
        let start = properties.schedule_start_time.map(|time| time.0);
        let end = properties.schedule_end_time.map(|time| time.0);
        if let (Some(start), Some(end)) = (start, end)
            && end <= start
        {
            return Err(PlanError::EndNotAfterStart {
                field: format!("{SCHEDULED}.scheduleEndTime"),
                start,
                end,
            });
        }
        Ok(Self {
            schedule,
            start,
            end,
            offset: TimeDelta::seconds(offset),
            first_execution_from: properties.first_execution_from.map(|time| time.0),
            error_threshold,
            incremental: properties.data_pull_mode == Some(DataPullMode::Incremental),
            timezone: properties.timezone.clone(),
        })
    }
}

impl SchedulePlan {
    /// Where a rate's periods count from: `scheduleStartTime`, else the activation time.
    pub fn anchor(&self, activated_at: DateTime<Utc>) -> DateTime<Utc> {
        self.start.unwrap_or(activated_at)
    }

    /// The earliest instant a tick may fire: the activation or `scheduleStartTime`, whichever
    /// is later.
    fn earliest(&self, activated_at: DateTime<Utc>) -> DateTime<Utc> {
        self.start
            .map_or(activated_at, |start| start.max(activated_at))
    }

    /// The first tick strictly after `after` for a flow activated at `activated_at`, or
    /// `None` when the flow never fires again (past `scheduleEndTime`, or a cron expression
    /// past its last year).
    pub fn next_fire(
        &self,
        after: DateTime<Utc>,
        activated_at: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let anchor = self.anchor(activated_at);
        let earliest = self.earliest(activated_at);
        let fire = if after < earliest {
            // The earliest instant itself counts when it is a tick (a rate fires right at its
            // anchor).
            match self.schedule.last_at_or_before(earliest, anchor) {
                Some(fire) if fire == earliest => fire,
                _ => self.schedule.next_after(earliest, anchor)?,
            }
        } else {
            self.schedule.next_after(after, anchor)?
        };
        match self.end {
            Some(end) if fire > end => None,
            _ => Some(fire),
        }
    }

    /// The tick a run is due for at `now`: the latest tick at or before `now` that is later
    /// than `last_fire` (the last tick already handled), or `None`.
    ///
    /// After downtime several ticks may have passed; only the latest is returned, so the flow
    /// runs once to catch up.
    pub fn due(
        &self,
        last_fire: Option<DateTime<Utc>>,
        activated_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let horizon = self.end.map_or(now, |end| end.min(now));
        let fire = self
            .schedule
            .last_at_or_before(horizon, self.anchor(activated_at))?;
        let fresh = fire >= self.earliest(activated_at) && last_fire.is_none_or(|last| fire > last);
        fresh.then_some(fire)
    }

    /// The window an incremental run for the tick `fire_time` reads, given the end of the last
    /// successful window; `None` for `Complete` flows, which read everything every time.
    pub fn window(
        &self,
        watermark: Option<DateTime<Utc>>,
        fire_time: DateTime<Utc>,
    ) -> Option<Window> {
        self.incremental.then(|| {
            Window::from(window::window(
                watermark,
                fire_time,
                self.offset,
                self.first_execution_from,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn properties(json: &str) -> ScheduledTriggerProperties {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    fn plan(json: &str) -> SchedulePlan {
        SchedulePlan::try_from(&properties(json)).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    fn error(json: &str) -> PlanError {
        match SchedulePlan::try_from(&properties(json)) {
            Err(error) => error,
            Ok(plan) => panic!("{json}: expected an error, got {plan:?}"),
        }
    }

    #[test]
    fn every_member_is_taken_from_the_wire_form() {
        let plan = plan(
            r#"{"scheduleExpression": "rate(5 minutes)", "dataPullMode": "Incremental",
                "scheduleStartTime": 1704067200, "scheduleEndTime": "2024-12-31T00:00:00Z",
                "timezone": "Europe/Paris", "scheduleOffset": 300,
                "firstExecutionFrom": 1701388800.5, "flowErrorDeactivationThreshold": 3}"#,
        );
        assert_eq!(plan.schedule.canonical(), "rate(5minutes)");
        assert_eq!(plan.start, Some(at("2024-01-01T00:00:00Z")));
        assert_eq!(plan.end, Some(at("2024-12-31T00:00:00Z")));
        assert_eq!(plan.offset, TimeDelta::minutes(5));
        assert_eq!(
            plan.first_execution_from,
            Some(at("2023-12-01T00:00:00.5Z"))
        );
        assert_eq!(plan.error_threshold, Some(3));
        assert!(plan.incremental);
        assert_eq!(plan.timezone.as_deref(), Some("Europe/Paris"));
    }

    #[test]
    fn defaults() {
        let plan = plan(r#"{"scheduleExpression": "cron(0 6 * * ? *)"}"#);
        assert_eq!(plan.start, None);
        assert_eq!(plan.end, None);
        assert_eq!(plan.offset, TimeDelta::zero());
        assert_eq!(plan.error_threshold, None);
        assert!(!plan.incremental);
        let complete = r#"{"scheduleExpression": "rate(1hours)", "dataPullMode": "Complete"}"#;
        assert!(!self::plan(complete).incremental);
        assert_eq!(
            self::plan(complete).window(None, at("2024-01-01T00:00:00Z")),
            None
        );
    }

    #[test]
    fn out_of_range_members_are_named() {
        let offset = error(r#"{"scheduleExpression": "rate(1hours)", "scheduleOffset": 36001}"#);
        assert_eq!(
            offset.to_string(),
            "triggerConfig.triggerProperties.Scheduled.scheduleOffset must be between 0 and \
             36000, got 36001"
        );
        assert_eq!(
            offset.field(),
            "triggerConfig.triggerProperties.Scheduled.scheduleOffset"
        );
        let negative = error(r#"{"scheduleExpression": "rate(1hours)", "scheduleOffset": -1}"#);
        assert!(negative.to_string().contains("got -1"));
        let threshold =
            error(r#"{"scheduleExpression": "rate(1hours)", "flowErrorDeactivationThreshold": 0}"#);
        assert_eq!(
            threshold.field(),
            "triggerConfig.triggerProperties.Scheduled.flowErrorDeactivationThreshold"
        );
        assert!(threshold.to_string().contains("between 1 and 100, got 0"));
        assert!(
            error(
                r#"{"scheduleExpression": "rate(1hours)", "flowErrorDeactivationThreshold": 101}"#
            )
            .to_string()
            .contains("got 101")
        );
        let expression = error(r#"{"scheduleExpression": "rate(0minutes)"}"#);
        assert_eq!(
            expression.field(),
            "triggerConfig.triggerProperties.Scheduled.scheduleExpression"
        );
        assert!(
            expression
                .to_string()
                .contains("rate must be at least 1 minute")
        );
        let unicode = error(r#"{"scheduleExpression": "cron(0 6 ½ * ? *)"}"#);
        assert!(
            unicode
                .to_string()
                .contains("'½' is not a valid value for day-of-month")
        );
        let empty = error(r#"{"scheduleExpression": ""}"#);
        assert!(
            empty
                .to_string()
                .contains("expected rate(...) or cron(...)")
        );
    }

    #[test]
    fn the_end_must_follow_the_start() {
        let same = error(
            r#"{"scheduleExpression": "rate(1hours)", "scheduleStartTime": 1704067200,
                "scheduleEndTime": 1704067200}"#,
        );
        assert_eq!(
            same.field(),
            "triggerConfig.triggerProperties.Scheduled.scheduleEndTime"
        );
        assert!(same.to_string().contains("must be after scheduleStartTime"));
    }

    #[test]
    fn a_rate_fires_at_activation_then_every_period() {
        let plan = plan(r#"{"scheduleExpression": "rate(15minutes)"}"#);
        let activated = at("2024-01-01T10:03:20.5Z");
        assert_eq!(
            plan.next_fire(at("2000-01-01T00:00:00Z"), activated),
            Some(activated)
        );
        assert_eq!(
            plan.next_fire(activated, activated),
            Some(at("2024-01-01T10:18:20.5Z"))
        );
        assert_eq!(plan.due(None, activated, activated), Some(activated));
        assert_eq!(
            plan.due(Some(activated), activated, at("2024-01-01T10:18:20.4Z")),
            None
        );
    }

    #[test]
    fn a_start_time_anchors_the_rate_and_rolls_forward_when_past() {
        let plan = plan(
            r#"{"scheduleExpression": "rate(1hours)",
                "scheduleStartTime": "2024-01-01T00:30:00Z"}"#,
        );
        // Activated before the start: the first tick is the start.
        let early = at("2023-12-31T08:00:00Z");
        assert_eq!(
            plan.next_fire(early, early),
            Some(at("2024-01-01T00:30:00Z"))
        );
        assert_eq!(plan.due(None, early, at("2024-01-01T00:29:59Z")), None);
        // Activated after the start: the next tick on the start's grid, not the past ones.
        let late = at("2024-01-05T07:10:00Z");
        assert_eq!(plan.next_fire(late, late), Some(at("2024-01-05T07:30:00Z")));
        assert_eq!(plan.due(None, late, at("2024-01-05T07:29:59Z")), None);
        assert_eq!(
            plan.due(None, late, at("2024-01-05T07:30:00Z")),
            Some(at("2024-01-05T07:30:00Z"))
        );
        // Activated exactly on a tick: that tick fires.
        let on_tick = at("2024-01-05T07:30:00Z");
        assert_eq!(plan.due(None, on_tick, on_tick), Some(on_tick));
        assert_eq!(
            plan.next_fire(at("2024-01-05T07:29:00Z"), on_tick),
            Some(on_tick)
        );
    }

    #[test]
    fn a_cron_ignores_ticks_before_activation() {
        let plan = plan(r#"{"scheduleExpression": "cron(0 * * * ? *)"}"#);
        let activated = at("2024-01-01T10:00:30Z");
        assert_eq!(
            plan.next_fire(at("2024-01-01T09:00:00Z"), activated),
            Some(at("2024-01-01T11:00:00Z"))
        );
        assert_eq!(plan.due(None, activated, at("2024-01-01T10:59:59Z")), None);
        let on_tick = at("2024-01-01T10:00:00Z");
        assert_eq!(
            plan.next_fire(at("2024-01-01T09:00:00Z"), on_tick),
            Some(on_tick)
        );
        assert_eq!(plan.due(None, on_tick, on_tick), Some(on_tick));
    }

    #[test]
    fn nothing_fires_after_the_end() {
        let plan = plan(
            r#"{"scheduleExpression": "rate(1hours)", "scheduleStartTime": "2024-01-01T00:00:00Z",
                "scheduleEndTime": "2024-01-01T03:00:00Z"}"#,
        );
        let activated = at("2023-12-31T00:00:00Z");
        // The end itself is a tick and still fires.
        assert_eq!(
            plan.next_fire(at("2024-01-01T02:00:00Z"), activated),
            Some(at("2024-01-01T03:00:00Z"))
        );
        assert_eq!(plan.next_fire(at("2024-01-01T03:00:00Z"), activated), None);
        // Long after the end, the last tick before it is still due once if it was missed...
        assert_eq!(
            plan.due(
                Some(at("2024-01-01T01:00:00Z")),
                activated,
                at("2024-06-01T00:00:00Z")
            ),
            Some(at("2024-01-01T03:00:00Z"))
        );
        // ...and never again.
        assert_eq!(
            plan.due(
                Some(at("2024-01-01T03:00:00Z")),
                activated,
                at("2024-06-01T00:00:00Z")
            ),
            None
        );
    }

    #[test]
    fn downtime_catches_up_with_one_run_for_the_latest_missed_tick() {
        let plan = plan(r#"{"scheduleExpression": "cron(0/10 * * * ? *)"}"#);
        let activated = at("2024-01-01T00:00:00Z");
        let last = at("2024-01-01T08:00:00Z");
        // Down from 08:05 to 13:37: 33 ticks were missed, one run is due, for 13:30.
        let now = at("2024-01-01T13:37:00Z");
        assert_eq!(
            plan.due(Some(last), activated, now),
            Some(at("2024-01-01T13:30:00Z"))
        );
        assert_eq!(
            plan.due(Some(at("2024-01-01T13:30:00Z")), activated, now),
            None
        );
        assert_eq!(
            plan.next_fire(at("2024-01-01T13:30:00Z").max(now), activated),
            Some(at("2024-01-01T13:40:00Z"))
        );
        // A year of downtime is as cheap to catch up with.
        let much_later = at("2025-01-01T00:05:00Z");
        assert_eq!(
            plan.due(Some(last), activated, much_later),
            Some(at("2025-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn windows_follow_the_watermark_and_offset() {
        let plan = plan(
            r#"{"scheduleExpression": "rate(1hours)", "dataPullMode": "Incremental",
                "scheduleOffset": 120, "firstExecutionFrom": "2023-12-25T00:00:00Z"}"#,
        );
        let fire = at("2024-01-01T10:00:00Z");
        assert_eq!(
            plan.window(None, fire),
            Some(Window {
                start: at("2023-12-25T00:00:00Z"),
                end: at("2024-01-01T09:58:00Z")
            })
        );
        assert_eq!(
            plan.window(Some(at("2024-01-01T08:58:00Z")), fire),
            Some(Window {
                start: at("2024-01-01T08:58:00Z"),
                end: at("2024-01-01T09:58:00Z")
            })
        );
    }
}
