//! Incremental windows: which slice of the source each run of an incremental flow reads.
//!
//! Run *k*, scheduled at *T_k* with `scheduleOffset` *t*, reads `[W, T_k − t)`, where the
//! watermark *W* is the end of the last **successful** run's window. The first run reads from
//! `firstExecutionFrom`, or from 30 days before it runs. Because each window starts exactly
//! where the previous successful one ended, consecutive windows neither overlap nor leave a
//! gap, and a failed run (which does not move the watermark) is simply covered again by the
//! next one.
//!
//! Both bounds are whole milliseconds, rounded down. AppFlow records windows
//! (`dataPullStartTime`/`dataPullEndTime`) and datetime filter values in milliseconds, so the
//! window that is recorded and pushed down is exactly the one the watermark continues from.
//! It also makes membership robust against sources that keep less precision than we do: for
//! a millisecond-aligned bound `b`, `t >= b` holds exactly when `floor_ms(t) >= b`, so a record
//! lands in the same window whether it is compared with microsecond or millisecond precision.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

/// How far back the first window of a flow without `firstExecutionFrom` reaches.
pub const DEFAULT_FIRST_WINDOW: TimeDelta = TimeDelta::days(30);

/// A half-open time range `[start, end)` on the source's timestamp field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    /// Inclusive start.
    pub start: DateTime<Utc>,
    /// Exclusive end.
    pub end: DateTime<Utc>,
}

impl Window {
    /// Whether `instant` falls in the window. Instants in any time zone compare by the moment
    /// they denote, not by their wall-clock reading.
    pub fn contains<Tz: TimeZone>(&self, instant: &DateTime<Tz>) -> bool {
        let instant = instant.with_timezone(&Utc);
        self.start <= instant && instant < self.end
    }

    /// Whether the window holds no instant at all (`start == end`).
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }
}

impl From<(DateTime<Utc>, DateTime<Utc>)> for Window {
    fn from((start, end): (DateTime<Utc>, DateTime<Utc>)) -> Self {
        Self { start, end }
    }
}

/// The window of a run scheduled at `run_time`, as `(start, end)`.
///
/// * `watermark`: the end of the previous successful run's window, `None` before the first
///   success.
/// * `offset`: `scheduleOffset`, how far every window is shifted back to let late records
///   arrive; zero or positive.
/// * `first_execution_from`: where the first window starts; defaults to
///   [`DEFAULT_FIRST_WINDOW`] before `run_time`.
///
/// The end never precedes the start: when it would (the offset grew since the last run,
/// `firstExecutionFrom` lies in the future, the clock went back), the window is empty and
/// starts and ends at its start, so nothing is read twice and the watermark stays put.
pub fn window(
    watermark: Option<DateTime<Utc>>,
    run_time: DateTime<Utc>,
    offset: TimeDelta,
    first_execution_from: Option<DateTime<Utc>>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = watermark
        .or(first_execution_from)
        .unwrap_or_else(|| saturating_sub(run_time, DEFAULT_FIRST_WINDOW));
    let start = floor_millis(start);
    let end = floor_millis(saturating_sub(run_time, offset));
    (start, end.max(start))
}

fn saturating_sub(instant: DateTime<Utc>, delta: TimeDelta) -> DateTime<Utc> {
    instant
        .checked_sub_signed(delta)
        .unwrap_or(if delta > TimeDelta::zero() {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
}

/// Rounds down to a whole millisecond (towards the past, also before 1970).
fn floor_millis(instant: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(instant.timestamp_millis()).unwrap_or(instant)
}

#[cfg(test)]
mod tests {
    use chrono::FixedOffset;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn minutes(n: i64) -> TimeDelta {
        TimeDelta::minutes(n)
    }

    #[test]
    fn the_first_window_reaches_back_thirty_days_or_to_first_execution_from() {
        let run = at("2024-03-31T12:00:00Z");
        assert_eq!(
            window(None, run, TimeDelta::zero(), None),
            (at("2024-03-01T12:00:00Z"), run)
        );
        assert_eq!(
            window(None, run, minutes(10), Some(at("2024-01-01T00:00:00Z"))),
            (at("2024-01-01T00:00:00Z"), at("2024-03-31T11:50:00Z"))
        );
    }

    #[test]
    fn later_windows_start_at_the_watermark_and_end_offset_before_the_run() {
        let watermark = at("2024-03-31T11:50:00Z");
        // firstExecutionFrom only matters before the first success.
        assert_eq!(
            window(
                Some(watermark),
                at("2024-03-31T13:00:00Z"),
                minutes(10),
                Some(at("2020-01-01T00:00:00Z"))
            ),
            (watermark, at("2024-03-31T12:50:00Z"))
        );
        // The offset may exceed the interval between runs (up to ten hours).
        assert_eq!(
            window(
                Some(at("2024-03-31T02:00:00Z")),
                at("2024-03-31T13:00:00Z"),
                TimeDelta::seconds(36_000),
                None
            ),
            (at("2024-03-31T02:00:00Z"), at("2024-03-31T03:00:00Z"))
        );
    }

    #[test]
    fn a_window_never_runs_backwards() {
        // The offset grew from 10 minutes to an hour: the window would end before it starts.
        let watermark = at("2024-03-31T12:50:00Z");
        let (start, end) = window(
            Some(watermark),
            at("2024-03-31T13:00:00Z"),
            minutes(60),
            None,
        );
        assert_eq!((start, end), (watermark, watermark));
        assert!(Window::from((start, end)).is_empty());
        // firstExecutionFrom in the future.
        let future = at("2030-01-01T00:00:00Z");
        assert_eq!(
            window(
                None,
                at("2024-03-31T13:00:00Z"),
                TimeDelta::zero(),
                Some(future)
            ),
            (future, future)
        );
    }

    #[test]
    fn extreme_instants_do_not_overflow() {
        let min = DateTime::<Utc>::MIN_UTC;
        let (start, end) = window(None, min, minutes(5), None);
        assert!(start <= end);
        assert_eq!(start, floor_millis(min));
        let max = DateTime::<Utc>::MAX_UTC;
        let (start, end) = window(Some(max), max, TimeDelta::zero(), None);
        assert_eq!(start, end);
    }

    #[test]
    fn bounds_are_whole_milliseconds() {
        let run = at("2024-03-31T13:00:00.123456789Z");
        let watermark = at("2024-03-31T12:00:00.987654321Z");
        let (start, end) = window(Some(watermark), run, TimeDelta::zero(), None);
        assert_eq!(start, at("2024-03-31T12:00:00.987Z"));
        assert_eq!(end, at("2024-03-31T13:00:00.123Z"));
        // Before 1970 the rounding still goes towards the past.
        assert_eq!(
            floor_millis(at("1969-12-31T23:59:59.9995Z")),
            at("1969-12-31T23:59:59.999Z")
        );
    }

    /// Runs a sequence of scheduled runs, each either succeeding or failing, over a set of
    /// record timestamps, and counts how often each record is delivered by a successful run.
    fn deliveries(
        records: &[DateTime<Utc>],
        runs: &[(DateTime<Utc>, bool)],
        offset: TimeDelta,
        first: DateTime<Utc>,
    ) -> Vec<usize> {
        let mut delivered = vec![0; records.len()];
        let mut watermark = None;
        for (run_time, success) in runs {
            let window = Window::from(window(watermark, *run_time, offset, Some(first)));
            if *success {
                for (count, record) in delivered.iter_mut().zip(records) {
                    if window.contains(record) {
                        *count += 1;
                    }
                }
                watermark = Some(window.end);
            }
        }
        delivered
    }

    #[test]
    fn records_on_window_edges_are_delivered_exactly_once() {
        let first = at("2024-01-01T00:00:00Z");
        let offset = minutes(5);
        let runs: Vec<(DateTime<Utc>, bool)> = (1..=4)
            .map(|hour| (first + TimeDelta::hours(hour), true))
            .collect();
        // Every window edge, and the instants a nanosecond either side of it.
        let edges = [
            first,
            at("2024-01-01T00:55:00Z"),
            at("2024-01-01T01:55:00Z"),
            at("2024-01-01T02:55:00Z"),
        ];
        let mut records = Vec::new();
        for edge in edges {
            records.push(edge - TimeDelta::nanoseconds(1));
            records.push(edge);
            records.push(edge + TimeDelta::nanoseconds(1));
        }
        let counts = deliveries(&records, &runs, offset, first);
        // Only the instant just before the very first window is outside every window.
        assert_eq!(counts[0], 0);
        assert!(counts[1..].iter().all(|count| *count == 1), "{counts:?}");
        // The last window ends at 03:55: that instant belongs to the next run.
        let after_last = [at("2024-01-01T03:55:00Z")];
        assert_eq!(deliveries(&after_last, &runs, offset, first), [0]);
    }

    #[test]
    fn a_failed_run_loses_nothing_and_duplicates_nothing() {
        let first = at("2024-01-01T00:00:00Z");
        let runs = [
            (at("2024-01-01T01:00:00Z"), true),
            (at("2024-01-01T02:00:00Z"), false),
            (at("2024-01-01T03:00:00Z"), false),
            (at("2024-01-01T04:00:00Z"), true),
            (at("2024-01-01T05:00:00Z"), true),
        ];
        let records: Vec<DateTime<Utc>> = (0..(5 * 60 * 60))
            .step_by(7)
            .map(|second| first + TimeDelta::seconds(second))
            .collect();
        let counts = deliveries(&records, &runs, TimeDelta::zero(), first);
        assert!(counts.iter().all(|count| *count == 1));
    }

    #[test]
    fn records_modified_during_a_run_go_to_the_next_run() {
        // The run at 01:00 reads up to 01:00 (no offset); a record modified at 01:00:00.5,
        // while that run is executing, is read by the run at 02:00.
        let first = at("2024-01-01T00:00:00Z");
        let runs = [
            (at("2024-01-01T01:00:00Z"), true),
            (at("2024-01-01T02:00:00Z"), true),
        ];
        let during = at("2024-01-01T01:00:00.5Z");
        let first_window = Window::from(window(None, runs[0].0, TimeDelta::zero(), Some(first)));
        assert!(!first_window.contains(&during));
        assert_eq!(deliveries(&[during], &runs, TimeDelta::zero(), first), [1]);
    }

    #[test]
    fn sub_millisecond_records_do_not_slip_between_windows() {
        // Run times carry sub-millisecond precision (a rate anchored at an activation time).
        let first = at("2024-01-01T00:00:00Z");
        let runs = [
            (at("2024-01-01T01:00:00.000700Z"), true),
            (at("2024-01-01T02:00:00.000700Z"), true),
        ];
        let records = [
            at("2024-01-01T00:59:59.999999999Z"),
            at("2024-01-01T01:00:00.000000001Z"),
            at("2024-01-01T01:00:00.000300Z"),
            at("2024-01-01T01:00:00.000999Z"),
            at("2024-01-01T01:00:00.001Z"),
        ];
        assert_eq!(
            deliveries(&records, &runs, TimeDelta::zero(), first),
            [1, 1, 1, 1, 1]
        );
        // The first window ends at 01:00:00.000: everything from then on is the second run's,
        // also for a source that truncates record timestamps to milliseconds.
        let (_, end) = window(None, runs[0].0, TimeDelta::zero(), Some(first));
        assert_eq!(end, at("2024-01-01T01:00:00Z"));
        let truncated: Vec<DateTime<Utc>> = records.iter().map(|r| floor_millis(*r)).collect();
        assert_eq!(
            deliveries(&truncated, &runs, TimeDelta::zero(), first),
            [1, 1, 1, 1, 1]
        );
        let first_window = Window::from(window(None, runs[0].0, TimeDelta::zero(), Some(first)));
        for (record, truncated) in records.iter().zip(&truncated) {
            assert_eq!(
                first_window.contains(record),
                first_window.contains(truncated)
            );
        }
    }

    #[test]
    fn time_zones_compare_by_instant() {
        let window = Window::from((at("2024-01-01T10:00:00Z"), at("2024-01-01T11:00:00Z")));
        let paris = FixedOffset::east_opt(3600).unwrap();
        let new_york = FixedOffset::west_opt(5 * 3600).unwrap();
        // 11:30 in Paris is 10:30 UTC: inside, although its wall clock reads 11:30.
        let inside = paris.with_ymd_and_hms(2024, 1, 1, 11, 30, 0).unwrap();
        assert!(window.contains(&inside));
        // 05:00 in New York is 10:00 UTC, the inclusive start.
        let start = new_york.with_ymd_and_hms(2024, 1, 1, 5, 0, 0).unwrap();
        assert!(window.contains(&start));
        // 12:00 in Paris is 11:00 UTC, the exclusive end.
        let end = paris.with_ymd_and_hms(2024, 1, 1, 12, 0, 0).unwrap();
        assert!(!window.contains(&end));
    }
}
