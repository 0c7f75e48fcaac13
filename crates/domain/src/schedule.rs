//! `scheduleExpression` grammar: `rate(...)` and AWS's six-field `cron(...)`.
//!
//! * `rate(N unit)` with unit `minute(s)`, `hour(s)` or `day(s)`. AppFlow writes the plural
//!   without a space (`rate(5minutes)`, `rate(1hours)`); a space and the singular are accepted
//!   too, and [`Schedule::canonical`] always gives AppFlow's form.
//! * `cron(minutes hours day-of-month month day-of-week year)`, as in EventBridge: exactly one
//!   of day-of-month and day-of-week is `?`; items are values, `*`, ranges `a-b` (wrapping
//!   around for cyclic fields, e.g. `FRI-MON`), steps `*/n`, `a/n`, `a-b/n`, and lists with
//!   `,`. Day-of-month also takes `L`, `LW` and `nW`; day-of-week takes `L`, `nL` and `n#k`.
//!   Months are `1-12` or `JAN-DEC`, weekdays `1-7` or `SUN-SAT` (`1` is Sunday), years
//!   `1970-2199`. Names and keywords are case-insensitive; the canonical form upper-cases them.
//!
//! # Fire times
//!
//! [`Schedule::next_after`] and [`Schedule::last_at_or_before`] compute when a schedule fires.
//! They are pure functions of their arguments, so the scheduler can ask "what is due now?" and
//! "when do I wake up next?" without any state here.
//!
//! * A rate fires at `anchor + k * period` for every `k >= 0`; the anchor is the flow's
//!   `scheduleStartTime`, or its activation time when it has none.
//! * A cron expression fires at the start (second 0) of every matching minute, evaluated in
//!   UTC. AppFlow's `timezone` member is a descriptive label only (timestamps are interpreted
//!   as given), so no time-zone database is needed. Day rules follow EventBridge (Quartz):
//!   `L` is the last day of the month, `LW` its last weekday (Monday to Friday), `nW` the
//!   weekday nearest day `n` without leaving the month (a Saturday 1st moves to Monday the
//!   3rd, a Sunday last day to the Friday before), `L` alone in day-of-week is Saturday, `nL`
//!   the last such weekday of the month and `n#k` the `k`-th one. A day that a month lacks
//!   (`31`, `30W`, `2#5`) simply does not fire in that month. Nothing fires after 2199, the
//!   last year the grammar allows.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeDelta, Timelike, Utc};

use crate::error::DomainError;

/// Minutes in a day.
const DAY_MINUTES: i64 = 24 * 60;

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// `rate(N unit)`.
    Rate(Rate),
    /// `cron(...)`.
    Cron(Cron),
}

/// A fixed interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// How many units; at least 1.
    pub value: u32,
    /// The unit.
    pub unit: RateUnit,
}

/// The unit of a [`Rate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    /// Minutes.
    Minutes,
    /// Hours.
    Hours,
    /// Days.
    Days,
}

impl RateUnit {
    fn plural(self) -> &'static str {
        match self {
            Self::Minutes => "minutes",
            Self::Hours => "hours",
            Self::Days => "days",
        }
    }

    fn length(self) -> TimeDelta {
        match self {
            Self::Minutes => TimeDelta::minutes(1),
            Self::Hours => TimeDelta::hours(1),
            Self::Days => TimeDelta::days(1),
        }
    }
}

/// A six-field cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    fields: Vec<CronField>,
}

/// The six positions of a cron expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CronPosition {
    /// 0-59.
    Minutes,
    /// 0-23.
    Hours,
    /// 1-31, `?`, `L`, `LW`, `nW`.
    DayOfMonth,
    /// 1-12 or JAN-DEC.
    Month,
    /// 1-7 or SUN-SAT, `?`, `L`, `nL`, `n#k`.
    DayOfWeek,
    /// 1970-2199.
    Year,
}

/// One field of a cron expression: its items, and its canonical text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronField {
    /// The comma-separated items.
    pub items: Vec<CronItem>,
    text: String,
}

impl CronField {
    /// The canonical text of the field (names upper-cased).
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// One comma-separated item of a cron field. Names are resolved to numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CronItem {
    /// `*`.
    All,
    /// `?` (day-of-month or day-of-week only).
    NoSpecificValue,
    /// A single value.
    Value(u32),
    /// `a-b`; `start > end` wraps around (cyclic fields only).
    Range(u32, u32),
    /// `*/n`, `a/n` or `a-b/n`.
    Step {
        /// First value.
        start: u32,
        /// Last value considered (inclusive); may be below `start` for a wrapping range.
        end: u32,
        /// Increment, at least 1.
        step: u32,
    },
    /// `L`: the last day of the month, or in day-of-week, Saturday.
    Last,
    /// `LW`: the last weekday of the month.
    LastWeekday,
    /// `nW`: the weekday nearest to day `n`.
    NearestWeekday(u32),
    /// `nL` in day-of-week: the last such weekday of the month.
    LastOfWeekday(u32),
    /// `n#k` in day-of-week: the `k`-th such weekday of the month.
    NthWeekday {
        /// 1 (Sunday) to 7 (Saturday).
        weekday: u32,
        /// 1 to 5.
        nth: u32,
    },
}

impl Cron {
    /// The field at `position`.
    pub fn field(&self, position: CronPosition) -> &CronField {
        &self.fields[position as usize]
    }
}

/// Parses a `scheduleExpression`.
///
/// # Errors
///
/// [`DomainError::InvalidSchedule`] (field `scheduleExpression`) naming what is wrong.
pub fn parse(expr: &str) -> Result<Schedule, DomainError> {
    let fail = |reason: String| DomainError::InvalidSchedule {
        field: "scheduleExpression".to_string(),
        expression: expr.to_string(),
        reason,
    };
    let trimmed = expr.trim();
    let (keyword, body) = match trimmed.find('(') {
        Some(open) if trimmed.ends_with(')') => {
            (&trimmed[..open], &trimmed[open + 1..trimmed.len() - 1])
        }
        _ => return Err(fail("expected rate(...) or cron(...)".into())),
    };
    match keyword.trim().to_ascii_lowercase().as_str() {
        "rate" => parse_rate(body).map(Schedule::Rate).map_err(fail),
        "cron" => parse_cron(body).map(Schedule::Cron).map_err(fail),
        _ => Err(fail("expected rate(...) or cron(...)".into())),
    }
}

impl Schedule {
    /// The expression as AppFlow echoes it: `rate(5minutes)`, `cron(0 6 ? * MON-FRI *)`.
    pub fn canonical(&self) -> String {
        match self {
            Self::Rate(rate) => format!("rate({}{})", rate.value, rate.unit.plural()),
            Self::Cron(cron) => {
                let fields: Vec<&str> = cron.fields.iter().map(CronField::text).collect();
                format!("cron({})", fields.join(" "))
            }
        }
    }

    /// The shortest time between two runs.
    ///
    /// Exact for rates. For cron expressions it is exact within a day (from the minutes and
    /// hours fields) and assumes that consecutive days can both match, so expressions that
    /// fire on a few days only (e.g. monthly) report at most one day. That is precise enough to
    /// enforce every per-source limit, the coarsest of which is once per day.
    pub fn min_interval(&self) -> TimeDelta {
        match self {
            Self::Rate(rate) => rate.period(),
            Self::Cron(cron) => {
                let minutes = expand(cron.field(CronPosition::Minutes), 0, 59);
                let hours = expand(cron.field(CronPosition::Hours), 0, 23);
                let mut fires: Vec<i64> = hours
                    .iter()
                    .flat_map(|h| {
                        minutes
                            .iter()
                            .map(move |m| i64::from(*h) * 60 + i64::from(*m))
                    })
                    .collect();
                fires.sort_unstable();
                let (Some(first), Some(last)) = (fires.first(), fires.last()) else {
                    return TimeDelta::days(1);
                };
                let across_days = DAY_MINUTES - last + first;
                let within_day = fires.windows(2).map(|w| w[1] - w[0]).min();
                TimeDelta::minutes(within_day.map_or(across_days, |gap| gap.min(across_days)))
            }
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl Schedule {
    /// The first fire time strictly after `after`, or `None` when the schedule never fires
    /// again (a cron expression past its last year, or a time beyond what `DateTime` holds).
    ///
    /// `anchor` is where a rate's grid starts (`scheduleStartTime`, else the activation time):
    /// a rate fires at `anchor + k * period` for `k >= 0`, so nothing fires before `anchor`.
    /// Cron expressions ignore it.
    pub fn next_after(&self, after: DateTime<Utc>, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Rate(rate) => rate.next_after(after, anchor),
            Self::Cron(cron) => cron.next_after(after),
        }
    }

    /// The latest fire time at or before `at`, or `None` when the schedule has not fired yet
    /// by then. `anchor` as for [`Schedule::next_after`].
    ///
    /// This is what makes catching up after downtime cheap: the most recent missed tick is
    /// found directly, without walking through every tick that was missed.
    pub fn last_at_or_before(
        &self,
        at: DateTime<Utc>,
        anchor: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match self {
            Self::Rate(rate) => rate.last_at_or_before(at, anchor),
            Self::Cron(cron) => cron.last_at_or_before(at),
        }
    }
}

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// Nanoseconds since the epoch; `i128` so that differences and multiples cannot overflow.
fn to_nanos(instant: DateTime<Utc>) -> i128 {
    i128::from(instant.timestamp()) * NANOS_PER_SECOND
        + i128::from(instant.timestamp_subsec_nanos())
}

fn from_nanos(nanos: i128) -> Option<DateTime<Utc>> {
    let seconds = i64::try_from(nanos.div_euclid(NANOS_PER_SECOND)).ok()?;
    let subsec = u32::try_from(nanos.rem_euclid(NANOS_PER_SECOND)).ok()?;
    DateTime::from_timestamp(seconds, subsec)
}

impl Rate {
    /// The time between two runs.
    pub fn period(&self) -> TimeDelta {
        // At most u32::MAX days, far below TimeDelta's limit, so this cannot overflow.
        TimeDelta::seconds(i64::from(self.value) * self.unit.length().num_seconds())
    }

    /// The period in nanoseconds, or `None` for a zero rate (which [`parse`] never returns,
    /// but the fields are public).
    fn period_nanos(&self) -> Option<i128> {
        let nanos = i128::from(self.period().num_seconds()) * NANOS_PER_SECOND;
        (nanos > 0).then_some(nanos)
    }

    fn next_after(&self, after: DateTime<Utc>, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let period = self.period_nanos()?;
        if after < anchor {
            return Some(anchor);
        }
        let anchor_nanos = to_nanos(anchor);
        let ticks = (to_nanos(after) - anchor_nanos).div_euclid(period) + 1;
        from_nanos(anchor_nanos + ticks * period)
    }

    fn last_at_or_before(&self, at: DateTime<Utc>, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let period = self.period_nanos()?;
        if at < anchor {
            return None;
        }
        let anchor_nanos = to_nanos(anchor);
        let ticks = (to_nanos(at) - anchor_nanos).div_euclid(period);
        from_nanos(anchor_nanos + ticks * period)
    }
}

/// The years a cron expression can name.
const FIRST_YEAR: i32 = 1970;
const LAST_YEAR: i32 = 2199;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Backward,
}

/// The values each field of a cron expression selects, indexed by value.
struct Matcher<'a> {
    cron: &'a Cron,
    minutes: Vec<bool>,
    hours: Vec<bool>,
    months: Vec<bool>,
    years: Vec<bool>,
}

impl<'a> Matcher<'a> {
    fn new(cron: &'a Cron) -> Self {
        Self {
            cron,
            minutes: selected(cron.field(CronPosition::Minutes), 0, 59),
            hours: selected(cron.field(CronPosition::Hours), 0, 23),
            months: selected(cron.field(CronPosition::Month), 1, 12),
            years: selected(cron.field(CronPosition::Year), 1970, 2199),
        }
    }

    /// The first (forward) or last (backward) matching minute at or beyond `from`, which must
    /// be a whole minute within the cron years.
    fn search(&self, from: NaiveDateTime, direction: Direction) -> Option<NaiveDateTime> {
        let from_year = u32::try_from(from.year()).ok()?;
        let (from_month, from_day) = (from.month(), from.day());
        for year in candidates(&self.years, 1970, 2199, Some(from_year), direction) {
            let month_from = (year == from_year).then_some(from_month);
            // Candidate years are within 1970..=2199, so the conversion cannot fail.
            let calendar_year = i32::try_from(year).ok()?;
            for month in candidates(&self.months, 1, 12, month_from, direction) {
                let day_from = (month_from == Some(month)).then_some(from_day);
                let days = self.cron.days(calendar_year, month);
                let last = days_in_month(calendar_year, month);
                for day in candidates(&days, 1, last, day_from, direction) {
                    let hour_from = (day_from == Some(day)).then_some(from.hour());
                    for hour in candidates(&self.hours, 0, 23, hour_from, direction) {
                        let minute_from = (hour_from == Some(hour)).then_some(from.minute());
                        let minutes = candidates(&self.minutes, 0, 59, minute_from, direction);
                        if let Some(minute) = minutes.first() {
                            return NaiveDate::from_ymd_opt(calendar_year, month, day)?
                                .and_hms_opt(hour, *minute, 0);
                        }
                    }
                }
            }
        }
        None
    }
}

/// The values `v` in `lo..=hi` with `set[v]`, in `direction` order, starting at `from`
/// (inclusive) when given.
fn candidates(set: &[bool], lo: u32, hi: u32, from: Option<u32>, direction: Direction) -> Vec<u32> {
    let (lo, hi) = match (from, direction) {
        (Some(from), Direction::Forward) => (lo.max(from), hi),
        (Some(from), Direction::Backward) => (lo, hi.min(from)),
        (None, _) => (lo, hi),
    };
    let selected = (lo..=hi).filter(|value| set.get(*value as usize).copied().unwrap_or(false));
    match direction {
        Direction::Forward => selected.collect(),
        Direction::Backward => selected.rev().collect(),
    }
}

fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The start of the minute containing `instant`.
fn floor_minute(instant: DateTime<Utc>) -> NaiveDateTime {
    let naive = instant.naive_utc();
    naive
        .date()
        .and_hms_opt(naive.hour(), naive.minute(), 0)
        .unwrap_or(naive)
}

impl Cron {
    /// The first matching minute strictly after `after` (UTC), or `None` when the expression
    /// never fires again.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let from = floor_minute(after).checked_add_signed(TimeDelta::minutes(1))?;
        if from.year() > LAST_YEAR {
            return None;
        }
        let from = if from.year() < FIRST_YEAR {
            NaiveDate::from_ymd_opt(FIRST_YEAR, 1, 1)?.and_hms_opt(0, 0, 0)?
        } else {
            from
        };
        Matcher::new(self)
            .search(from, Direction::Forward)
            .map(|fire| fire.and_utc())
    }

    /// The latest matching minute at or before `at` (UTC), or `None` when the expression has
    /// not fired by then.
    pub fn last_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let from = floor_minute(at);
        if from.year() < FIRST_YEAR {
            return None;
        }
        let from = if from.year() > LAST_YEAR {
            NaiveDate::from_ymd_opt(LAST_YEAR, 12, 31)?.and_hms_opt(23, 59, 0)?
        } else {
            from
        };
        Matcher::new(self)
            .search(from, Direction::Backward)
            .map(|fire| fire.and_utc())
    }

    /// Whether the expression fires in the minute that contains `instant`.
    pub fn matches(&self, instant: DateTime<Utc>) -> bool {
        let naive = instant.naive_utc();
        let Ok(year) = u32::try_from(naive.year()) else {
            return false;
        };
        let selects = |position: CronPosition, value: u32, min: u32, max: u32| {
            self.field(position).items.iter().any(|item| match *item {
                CronItem::All => (min..=max).contains(&value),
                CronItem::Value(selected) => selected == value,
                CronItem::Range(start, end) => {
                    wrapping(start, end, min, max, 1).any(|selected| selected == value)
                }
                CronItem::Step { start, end, step } => {
                    wrapping(start, end, min, max, step).any(|selected| selected == value)
                }
                _ => false,
            })
        };
        selects(CronPosition::Minutes, naive.minute(), 0, 59)
            && selects(CronPosition::Hours, naive.hour(), 0, 23)
            && selects(CronPosition::Month, naive.month(), 1, 12)
            && selects(CronPosition::Year, year, 1970, 2199)
            && self.days(naive.year(), naive.month())[naive.day() as usize]
    }

    /// The days of `month` in `year` that the day-of-month or day-of-week field selects,
    /// indexed by day (index 0 unused).
    fn days(&self, year: i32, month: u32) -> [bool; 32] {
        let mut days = [false; 32];
        let Some(first) = NaiveDate::from_ymd_opt(year, month, 1) else {
            return days;
        };
        let last = days_in_month(year, month);
        // 1 (Sunday) to 7 (Saturday), as in the expression.
        let first_weekday = first.weekday().number_from_sunday();
        let weekday = |day: u32| (first_weekday - 1 + day - 1) % 7 + 1;
        let mut mark = |day: u32| {
            if (1..=last).contains(&day) {
                days[day as usize] = true;
            }
        };
        // The nearest weekday to `day` without leaving the month.
        let nearest_weekday = |day: u32| match weekday(day) {
            7 if day == 1 => 3,
            7 => day - 1,
            1 if day == last => day - 2,
            1 => day + 1,
            _ => day,
        };

        let day_of_month = self.field(CronPosition::DayOfMonth);
        if day_of_month.items != [CronItem::NoSpecificValue] {
            for item in &day_of_month.items {
                match *item {
                    CronItem::All => (1..=last).for_each(&mut mark),
                    CronItem::Value(day) => mark(day),
                    CronItem::Range(start, end) => {
                        wrapping(start, end, 1, 31, 1).for_each(&mut mark)
                    }
                    CronItem::Step { start, end, step } => {
                        wrapping(start, end, 1, 31, step).for_each(&mut mark)
                    }
                    CronItem::Last => mark(last),
                    CronItem::LastWeekday => mark(nearest_weekday(last)),
                    CronItem::NearestWeekday(day) if day <= last => mark(nearest_weekday(day)),
                    // A day the month lacks, and items the grammar only allows in day-of-week.
                    _ => {}
                }
            }
            return days;
        }

        let mut weekdays = [false; 8];
        for item in &self.field(CronPosition::DayOfWeek).items {
            match *item {
                CronItem::All => weekdays = [true; 8],
                CronItem::Value(day) => weekdays[day as usize % 8] = true,
                CronItem::Range(start, end) => {
                    wrapping(start, end, 1, 7, 1).for_each(|day| weekdays[day as usize % 8] = true)
                }
                CronItem::Step { start, end, step } => wrapping(start, end, 1, 7, step)
                    .for_each(|day| weekdays[day as usize % 8] = true),
                // `L` alone is the last day of the week.
                CronItem::Last => weekdays[7] = true,
                CronItem::LastOfWeekday(target) => mark(last - (weekday(last) + 7 - target) % 7),
                CronItem::NthWeekday {
                    weekday: target,
                    nth,
                } => mark(1 + (target + 7 - first_weekday) % 7 + 7 * (nth - 1)),
                _ => {}
            }
        }
        for day in 1..=last {
            if weekdays[weekday(day) as usize] {
                mark(day);
            }
        }
        days
    }
}

fn parse_rate(body: &str) -> Result<Rate, String> {
    let body = body.trim();
    let digits_end = body
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(body.len());
    let (digits, unit) = body.split_at(digits_end);
    if digits.is_empty() {
        return Err(
            "rate needs a whole number of minutes, hours or days, e.g. rate(5minutes)".into(),
        );
    }
    let value: u32 = digits
        .parse()
        .map_err(|_| format!("rate value {digits} is too large"))?;
    let unit = match unit.trim().to_ascii_lowercase().as_str() {
        "minute" | "minutes" => RateUnit::Minutes,
        "hour" | "hours" => RateUnit::Hours,
        "day" | "days" => RateUnit::Days,
        "" => return Err("rate needs a unit: minutes, hours or days".into()),
        other => {
            return Err(format!(
                "unknown rate unit '{other}' (use minutes, hours or days)"
            ));
        }
    };
    if value == 0 {
        return Err("rate must be at least 1 minute".into());
    }
    // Keeps `min_interval` far from TimeDelta's limits; no schedule needs more than a century.
    if i64::from(value) * unit.length().num_minutes() > 36_500 * DAY_MINUTES {
        return Err(format!("rate value {value} is too large"));
    }
    Ok(Rate { value, unit })
}

/// Static description of one cron position.
struct Spec {
    position: CronPosition,
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for `min..`, e.g. JAN for 1.
    names: &'static [&'static str],
    cyclic: bool,
}

const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const SPECS: [Spec; 6] = [
    Spec {
        position: CronPosition::Minutes,
        name: "minutes",
        min: 0,
        max: 59,
        names: &[],
        cyclic: true,
    },
    Spec {
        position: CronPosition::Hours,
        name: "hours",
        min: 0,
        max: 23,
        names: &[],
        cyclic: true,
    },
    Spec {
        position: CronPosition::DayOfMonth,
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
        cyclic: true,
    },
    Spec {
        position: CronPosition::Month,
        name: "month",
        min: 1,
        max: 12,
        names: MONTHS,
        cyclic: true,
    },
    Spec {
        position: CronPosition::DayOfWeek,
        name: "day-of-week",
        min: 1,
        max: 7,
        names: WEEKDAYS,
        cyclic: true,
    },
    Spec {
        position: CronPosition::Year,
        name: "year",
        min: 1970,
        max: 2199,
        names: &[],
        cyclic: false,
    },
];

fn parse_cron(body: &str) -> Result<Cron, String> {
    let parts: Vec<&str> = body.split_whitespace().collect();
    if parts.len() != 6 {
        return Err(format!(
            "cron needs 6 fields (minutes hours day-of-month month day-of-week year), found {}",
            parts.len()
        ));
    }
    let fields = parts
        .iter()
        .zip(SPECS.iter())
        .map(|(text, spec)| parse_field(text, spec))
        .collect::<Result<Vec<_>, _>>()?;
    let is_question =
        |position: CronPosition| fields[position as usize].items == [CronItem::NoSpecificValue];
    match (
        is_question(CronPosition::DayOfMonth),
        is_question(CronPosition::DayOfWeek),
    ) {
        (true, false) | (false, true) => Ok(Cron { fields }),
        (true, true) => Err("only one of day-of-month and day-of-week can be ?".into()),
        (false, false) => Err("one of day-of-month and day-of-week must be ?".into()),
    }
}

fn parse_field(text: &str, spec: &Spec) -> Result<CronField, String> {
    let upper = text.to_ascii_uppercase();
    let items = upper
        .split(',')
        .map(|item| parse_item(item, spec))
        .collect::<Result<Vec<_>, _>>()?;
    if items.len() > 1 && items.contains(&CronItem::NoSpecificValue) {
        return Err(format!(
            "? cannot be combined with other values in {}",
            spec.name
        ));
    }
    Ok(CronField { items, text: upper })
}

fn parse_item(item: &str, spec: &Spec) -> Result<CronItem, String> {
    let name = spec.name;
    let day_of_month = spec.position == CronPosition::DayOfMonth;
    let day_of_week = spec.position == CronPosition::DayOfWeek;
    if item.is_empty() {
        return Err(format!("empty item in {name}"));
    }
    if item == "*" {
        return Ok(CronItem::All);
    }
    if item == "?" {
        return if day_of_month || day_of_week {
            Ok(CronItem::NoSpecificValue)
        } else {
            Err(format!(
                "? is only allowed in day-of-month and day-of-week, not {name}"
            ))
        };
    }
    if let Some((base, step)) = item.split_once('/') {
        let step = number(step, name)?;
        let span = spec.max - spec.min + 1;
        if step == 0 || step > span {
            return Err(format!(
                "step {step} in {name} must be between 1 and {span}"
            ));
        }
        let (start, end) = if base == "*" {
            (spec.min, spec.max)
        } else if let Some((a, b)) = base.split_once('-') {
            range(value(a, spec)?, value(b, spec)?, spec)?
        } else {
            (value(base, spec)?, spec.max)
        };
        return Ok(CronItem::Step { start, end, step });
    }
    if day_of_month {
        if item == "L" {
            return Ok(CronItem::Last);
        }
        if item == "LW" {
            return Ok(CronItem::LastWeekday);
        }
        if let Some(day) = item.strip_suffix('W') {
            return Ok(CronItem::NearestWeekday(value(day, spec)?));
        }
    }
    if day_of_week {
        if item == "L" {
            return Ok(CronItem::Last);
        }
        if let Some(day) = item.strip_suffix('L') {
            return Ok(CronItem::LastOfWeekday(value(day, spec)?));
        }
        if let Some((day, nth)) = item.split_once('#') {
            let weekday = value(day, spec)?;
            let nth = number(nth, name)?;
            if !(1..=5).contains(&nth) {
                return Err(format!("#{nth} in day-of-week must be between 1 and 5"));
            }
            return Ok(CronItem::NthWeekday { weekday, nth });
        }
    }
    if let Some((a, b)) = item.split_once('-') {
        let (start, end) = range(value(a, spec)?, value(b, spec)?, spec)?;
        return Ok(CronItem::Range(start, end));
    }
    value(item, spec).map(CronItem::Value)
}

fn range(start: u32, end: u32, spec: &Spec) -> Result<(u32, u32), String> {
    if start > end && !spec.cyclic {
        return Err(format!(
            "range {start}-{end} in {} runs backwards",
            spec.name
        ));
    }
    Ok((start, end))
}

/// A number or name within the field's range.
fn value(text: &str, spec: &Spec) -> Result<u32, String> {
    let parsed = match spec.names.iter().position(|n| *n == text) {
        Some(index) => spec.min + index as u32,
        None => number(text, spec.name)?,
    };
    if parsed < spec.min || parsed > spec.max {
        return Err(format!(
            "{parsed} is out of range for {} ({}-{})",
            spec.name, spec.min, spec.max
        ));
    }
    Ok(parsed)
}

fn number(text: &str, field: &str) -> Result<u32, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{text}' is not a valid value for {field}"));
    }
    text.parse()
        .map_err(|_| format!("'{text}' is out of range for {field}"))
}

/// The values a minutes or hours field selects.
fn expand(field: &CronField, min: u32, max: u32) -> Vec<u32> {
    let selected = selected(field, min, max);
    (min..=max).filter(|v| selected[*v as usize]).collect()
}

/// Which values of `min..=max` a field without day keywords selects, indexed by value.
fn selected(field: &CronField, min: u32, max: u32) -> Vec<bool> {
    let mut selected = vec![false; (max + 1) as usize];
    let mut mark = |value: u32| {
        if let Some(slot) = selected.get_mut(value as usize) {
            *slot = true;
        }
    };
    for item in &field.items {
        match *item {
            CronItem::All => (min..=max).for_each(&mut mark),
            CronItem::Value(v) => mark(v),
            CronItem::Range(start, end) => wrapping(start, end, min, max, 1).for_each(&mut mark),
            CronItem::Step { start, end, step } => {
                wrapping(start, end, min, max, step).for_each(&mut mark)
            }
            // Only day fields take these; they are evaluated per month by `Cron::days`.
            _ => {}
        }
    }
    selected
}

/// `start, start+step, ...` up to `end`, wrapping past `max` back to `min` when `start > end`.
fn wrapping(start: u32, end: u32, min: u32, max: u32, step: u32) -> impl Iterator<Item = u32> {
    let span = max - min + 1;
    let length = if start <= end {
        end - start
    } else {
        (max - start) + (end - min) + 1
    };
    (0..=length)
        .step_by(step as usize)
        .map(move |offset| min + (start - min + offset) % span)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(expr: &str) -> String {
        parse(expr)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
            .canonical()
    }

    fn reason(expr: &str) -> String {
        match parse(expr) {
            Err(DomainError::InvalidSchedule { reason, .. }) => reason,
            other => panic!("{expr}: expected an invalid schedule, got {other:?}"),
        }
    }

    fn interval(expr: &str) -> TimeDelta {
        parse(expr).unwrap().min_interval()
    }

    #[test]
    fn rates_in_every_spelling() {
        assert_eq!(canonical("rate(5minutes)"), "rate(5minutes)");
        assert_eq!(canonical("rate(5 minutes)"), "rate(5minutes)");
        assert_eq!(canonical("rate(1 minute)"), "rate(1minutes)");
        assert_eq!(canonical("rate(1hours)"), "rate(1hours)");
        assert_eq!(canonical(" rate( 2  Hour ) "), "rate(2hours)");
        assert_eq!(canonical("RATE(1days)"), "rate(1days)");
        assert_eq!(canonical("rate(007days)"), "rate(7days)");
        assert_eq!(interval("rate(5minutes)"), TimeDelta::minutes(5));
        assert_eq!(interval("rate(3hours)"), TimeDelta::hours(3));
        assert_eq!(interval("rate(2days)"), TimeDelta::days(2));
    }

    #[test]
    fn bad_rates() {
        assert_eq!(reason("rate(0minutes)"), "rate must be at least 1 minute");
        assert!(reason("rate(minutes)").contains("whole number"));
        assert!(reason("rate(-5minutes)").contains("whole number"));
        assert!(reason("rate(1.5hours)").contains("unknown rate unit '.5hours'"));
        assert!(reason("rate(5)").contains("needs a unit"));
        assert!(reason("rate(5 weeks)").contains("unknown rate unit 'weeks'"));
        assert!(reason("rate(99999999999minutes)").contains("too large"));
        assert!(reason("rate(36501days)").contains("too large"));
        assert!(reason("rate(52560001minutes)").contains("too large"));
        assert_eq!(canonical("rate(52560000minutes)"), "rate(52560000minutes)");
        assert_eq!(canonical("rate(876000hours)"), "rate(876000hours)");
        assert!(reason("rate(5minutes").contains("expected rate(...) or cron(...)"));
        assert!(reason("every 5 minutes").contains("expected rate(...) or cron(...)"));
        assert!(reason("").contains("expected rate(...) or cron(...)"));
        assert!(reason("at(2030-01-01T00:00:00)").contains("expected rate(...) or cron(...)"));
    }

    #[test]
    fn the_error_names_field_and_expression() {
        let error = parse("rate(0minutes)").unwrap_err();
        assert_eq!(
            error.to_string(),
            "scheduleExpression 'rate(0minutes)' is not a valid schedule expression: rate must be at least 1 minute"
        );
        assert_eq!(error.field(), "scheduleExpression");
    }

    #[test]
    fn crons_from_the_aws_documentation() {
        for expr in [
            "cron(0 6 ? * MON-FRI *)",
            "cron(0 10 * * ? *)",
            "cron(15 12 * * ? *)",
            "cron(0 18 ? * MON-FRI *)",
            "cron(0 8 1 * ? *)",
            "cron(0/15 * * * ? *)",
            "cron(0/10 * ? * MON-FRI *)",
            "cron(0/5 8-17 ? * MON-FRI *)",
            "cron(0 9 ? * 2#1 *)",
            "cron(0 0 L * ? *)",
            "cron(0 0 LW * ? *)",
            "cron(0 0 15W * ? *)",
            "cron(0 0 ? * 6L *)",
            "cron(0 0 ? * L *)",
            "cron(0 0 1 JAN,JUL ? 2030-2035)",
            "cron(0 22-2 ? * FRI-MON *)",
            "cron(5,35 14 * * ? 2099)",
        ] {
            assert_eq!(canonical(expr), expr);
        }
        assert_eq!(
            canonical("cron(0  6 ? * mon-fri *)"),
            "cron(0 6 ? * MON-FRI *)"
        );
        assert_eq!(canonical("cron(0 0 ? * fri#3 *)"), "cron(0 0 ? * FRI#3 *)");
    }

    #[test]
    fn cron_items_are_resolved() {
        let Schedule::Cron(cron) = parse("cron(*/5 1-3 ? jan-MAR SUN,6#2,FRIL 2030/2)").unwrap()
        else {
            panic!("not a cron");
        };
        assert_eq!(
            cron.field(CronPosition::Minutes).items,
            [CronItem::Step {
                start: 0,
                end: 59,
                step: 5
            }]
        );
        assert_eq!(
            cron.field(CronPosition::Hours).items,
            [CronItem::Range(1, 3)]
        );
        assert_eq!(
            cron.field(CronPosition::DayOfMonth).items,
            [CronItem::NoSpecificValue]
        );
        assert_eq!(
            cron.field(CronPosition::Month).items,
            [CronItem::Range(1, 3)]
        );
        assert_eq!(
            cron.field(CronPosition::DayOfWeek).items,
            [
                CronItem::Value(1),
                CronItem::NthWeekday { weekday: 6, nth: 2 },
                CronItem::LastOfWeekday(6)
            ]
        );
        assert_eq!(
            cron.field(CronPosition::Year).items,
            [CronItem::Step {
                start: 2030,
                end: 2199,
                step: 2
            }]
        );
        assert_eq!(cron.field(CronPosition::Month).text(), "JAN-MAR");
    }

    #[test]
    fn bad_crons() {
        let cases = [
            ("cron(0 6 * * *)", "cron needs 6 fields"),
            ("cron(0 6 * * * * *)", "cron needs 6 fields"),
            (
                "cron(0 6 * * MON *)",
                "one of day-of-month and day-of-week must be ?",
            ),
            (
                "cron(0 6 ? * ? *)",
                "only one of day-of-month and day-of-week can be ?",
            ),
            (
                "cron(60 6 * * ? *)",
                "60 is out of range for minutes (0-59)",
            ),
            ("cron(0 24 * * ? *)", "24 is out of range for hours (0-23)"),
            (
                "cron(0 6 0 * ? *)",
                "0 is out of range for day-of-month (1-31)",
            ),
            (
                "cron(0 6 32 * ? *)",
                "32 is out of range for day-of-month (1-31)",
            ),
            ("cron(0 6 1 13 ? *)", "13 is out of range for month (1-12)"),
            (
                "cron(0 6 1 FOO ? *)",
                "'FOO' is not a valid value for month",
            ),
            (
                "cron(0 6 ? * 8 *)",
                "8 is out of range for day-of-week (1-7)",
            ),
            (
                "cron(0 6 ? * 0 *)",
                "0 is out of range for day-of-week (1-7)",
            ),
            (
                "cron(0 6 1 * ? 1969)",
                "1969 is out of range for year (1970-2199)",
            ),
            (
                "cron(0 6 1 * ? 2200)",
                "2200 is out of range for year (1970-2199)",
            ),
            (
                "cron(0 6 1 * ? 2035-2030)",
                "range 2035-2030 in year runs backwards",
            ),
            (
                "cron(*/0 6 1 * ? *)",
                "step 0 in minutes must be between 1 and 60",
            ),
            (
                "cron(*/61 6 1 * ? *)",
                "step 61 in minutes must be between 1 and 60",
            ),
            ("cron(0 6 1,,2 * ? *)", "empty item in day-of-month"),
            (
                "cron(0 ? 1 * ? *)",
                "? is only allowed in day-of-month and day-of-week",
            ),
            ("cron(0 6 ?,1 * * *)", "? cannot be combined"),
            (
                "cron(0 6 ? * 2#6 *)",
                "#6 in day-of-week must be between 1 and 5",
            ),
            (
                "cron(0 6 ? * 2#0 *)",
                "#0 in day-of-week must be between 1 and 5",
            ),
            ("cron(L 6 1 * ? *)", "'L' is not a valid value for minutes"),
            (
                "cron(0 6 ? * 5W *)",
                "'5W' is not a valid value for day-of-week",
            ),
            ("cron(0 6 32W * ? *)", "32 is out of range for day-of-month"),
            ("cron(0 6 1 * ? -1)", "'' is not a valid value for year"),
            (
                "cron(0 6 1 * ? 99999999999)",
                "'99999999999' is out of range for year",
            ),
            ("cron(0 6 1 * ? ½)", "'½' is not a valid value for year"),
            ("cron()", "cron needs 6 fields"),
        ];
        for (expr, expected) in cases {
            let got = reason(expr);
            assert!(
                got.contains(expected),
                "{expr}: got '{got}', expected '{expected}'"
            );
        }
    }

    #[test]
    fn cron_intervals() {
        assert_eq!(interval("cron(0 6 ? * MON-FRI *)"), TimeDelta::days(1));
        assert_eq!(interval("cron(0 8 1 * ? *)"), TimeDelta::days(1));
        assert_eq!(interval("cron(* * * * ? *)"), TimeDelta::minutes(1));
        assert_eq!(interval("cron(0/15 * * * ? *)"), TimeDelta::minutes(15));
        assert_eq!(interval("cron(0 * * * ? *)"), TimeDelta::hours(1));
        // 0 and 59 are a minute apart across the hour boundary.
        assert_eq!(interval("cron(0,59 * * * ? *)"), TimeDelta::minutes(1));
        // ...but not when only one hour fires: 00:59 -> 00:00 next day.
        assert_eq!(interval("cron(0,59 0 * * ? *)"), TimeDelta::minutes(59));
        // 23:50 -> 00:10 the next day is the shortest gap.
        assert_eq!(interval("cron(10,50 0,23 * * ? *)"), TimeDelta::minutes(20));
        // A wrapping hour range: 22, 23, 0, 1, 2.
        assert_eq!(interval("cron(0 22-2 * * ? *)"), TimeDelta::hours(1));
        assert_eq!(interval("cron(0 12/6 * * ? *)"), TimeDelta::hours(6));
        // 5, 25, 45: the gap from :45 to the next hour's :05 is also 20 minutes.
        assert_eq!(interval("cron(5-50/20 * * * ? *)"), TimeDelta::minutes(20));
        assert_eq!(interval("cron(5-50/30 * * * ? *)"), TimeDelta::minutes(30));
        assert_eq!(interval("cron(0-40/40 * * * ? *)"), TimeDelta::minutes(20));
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn schedule(expr: &str) -> Schedule {
        parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    /// The next `count` fire times of a cron expression strictly after `after`, as
    /// `YYYY-MM-DDTHH:MM`.
    fn fires(expr: &str, after: &str, count: usize) -> Vec<String> {
        let schedule = schedule(expr);
        let anchor = at("2000-01-01T00:00:00Z");
        let mut fires = Vec::new();
        let mut cursor = at(after);
        while fires.len() < count {
            let Some(fire) = schedule.next_after(cursor, anchor) else {
                break;
            };
            assert!(fire > cursor, "{expr}: {fire} is not after {cursor}");
            fires.push(fire.format("%Y-%m-%dT%H:%M").to_string());
            cursor = fire;
        }
        fires
    }

    fn next(expr: &str, after: &str) -> Option<String> {
        fires(expr, after, 1).pop()
    }

    #[test]
    fn rates_fire_on_the_anchor_grid() {
        let rate = schedule("rate(5minutes)");
        let anchor = at("2024-01-01T10:00:00.250Z");
        // Before the anchor, the anchor itself is the first fire.
        assert_eq!(
            rate.next_after(at("2023-06-01T00:00:00Z"), anchor),
            Some(anchor)
        );
        // Strictly after: a tick exactly at `after` is not returned.
        assert_eq!(
            rate.next_after(anchor, anchor),
            Some(at("2024-01-01T10:05:00.250Z"))
        );
        assert_eq!(
            rate.next_after(at("2024-01-01T10:05:00.249999999Z"), anchor),
            Some(at("2024-01-01T10:05:00.250Z"))
        );
        assert_eq!(
            rate.next_after(at("2024-01-01T10:05:00.250Z"), anchor),
            Some(at("2024-01-01T10:10:00.250Z"))
        );
        // Far from the anchor the grid does not drift.
        assert_eq!(
            rate.next_after(at("2124-01-01T00:00:00Z"), anchor),
            Some(at("2124-01-01T00:00:00.250Z"))
        );
        assert_eq!(
            schedule("rate(1days)")
                .next_after(at("2024-02-28T12:00:00Z"), at("2024-01-01T12:00:00Z")),
            Some(at("2024-02-29T12:00:00Z"))
        );
    }

    #[test]
    fn rates_look_back() {
        let rate = schedule("rate(1hours)");
        let anchor = at("2024-01-01T00:30:00Z");
        assert_eq!(
            rate.last_at_or_before(at("2024-01-01T00:29:59Z"), anchor),
            None
        );
        assert_eq!(rate.last_at_or_before(anchor, anchor), Some(anchor));
        assert_eq!(
            rate.last_at_or_before(at("2024-01-01T05:29:59.999Z"), anchor),
            Some(at("2024-01-01T04:30:00Z"))
        );
        assert_eq!(
            rate.last_at_or_before(at("2024-01-01T05:30:00Z"), anchor),
            Some(at("2024-01-01T05:30:00Z"))
        );
    }

    #[test]
    fn rates_at_the_end_of_time() {
        let rate = schedule("rate(36500days)");
        assert_eq!(
            rate.next_after(DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC),
            None
        );
        assert_eq!(
            rate.last_at_or_before(DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC)
                .map(|fire| fire <= DateTime::<Utc>::MAX_UTC),
            Some(true)
        );
        let zero = Schedule::Rate(Rate {
            value: 0,
            unit: RateUnit::Minutes,
        });
        let now = at("2024-01-01T00:00:00Z");
        assert_eq!(zero.next_after(now, now), None);
        assert_eq!(zero.last_at_or_before(now, now), None);
    }

    #[test]
    fn cron_values_lists_ranges_and_steps() {
        // Friday 2024-03-01: the next weekday run is Monday.
        assert_eq!(
            fires("cron(0 6 ? * MON-FRI *)", "2024-03-01T06:00:00Z", 2),
            ["2024-03-04T06:00", "2024-03-05T06:00"]
        );
        assert_eq!(
            fires("cron(0/15 * * * ? *)", "2024-03-01T10:07:30Z", 4),
            [
                "2024-03-01T10:15",
                "2024-03-01T10:30",
                "2024-03-01T10:45",
                "2024-03-01T11:00"
            ]
        );
        assert_eq!(
            fires("cron(5,35 14 * * ? *)", "2024-03-01T14:05:00Z", 2),
            ["2024-03-01T14:35", "2024-03-02T14:05"]
        );
        assert_eq!(
            fires("cron(0 22-2 * * ? *)", "2024-03-01T21:00:00Z", 6),
            [
                "2024-03-01T22:00",
                "2024-03-01T23:00",
                "2024-03-02T00:00",
                "2024-03-02T01:00",
                "2024-03-02T02:00",
                "2024-03-02T22:00"
            ]
        );
        assert_eq!(
            fires("cron(0 0 1 JAN,jul ? *)", "2024-01-01T00:00:00Z", 3),
            ["2024-07-01T00:00", "2025-01-01T00:00", "2025-07-01T00:00"]
        );
        assert_eq!(
            fires("cron(30 9 ? * FRI-MON *)", "2024-03-01T09:30:00Z", 4),
            [
                "2024-03-02T09:30",
                "2024-03-03T09:30",
                "2024-03-04T09:30",
                "2024-03-08T09:30"
            ]
        );
        assert_eq!(
            fires("cron(0 0 */10 * ? *)", "2024-01-01T00:00:00Z", 5),
            [
                "2024-01-11T00:00",
                "2024-01-21T00:00",
                "2024-01-31T00:00",
                "2024-02-01T00:00",
                "2024-02-11T00:00"
            ]
        );
        assert_eq!(
            fires("cron(0 8 ? * 2/2 *)", "2024-03-03T12:00:00Z", 4),
            [
                "2024-03-04T08:00",
                "2024-03-06T08:00",
                "2024-03-08T08:00",
                "2024-03-11T08:00"
            ]
        );
        assert_eq!(
            fires("cron(0 0 ? */5 1 2024)", "2024-01-01T00:00:00Z", 9),
            [
                "2024-01-07T00:00",
                "2024-01-14T00:00",
                "2024-01-21T00:00",
                "2024-01-28T00:00",
                "2024-06-02T00:00",
                "2024-06-09T00:00",
                "2024-06-16T00:00",
                "2024-06-23T00:00",
                "2024-06-30T00:00"
            ]
        );
        // Every minute; `*` in day-of-week with `?` in day-of-month is every day.
        assert_eq!(
            fires("cron(* * ? * * *)", "2024-12-31T23:58:59.999Z", 2),
            ["2024-12-31T23:59", "2025-01-01T00:00"]
        );
    }

    #[test]
    fn cron_day_of_week_counts_from_sunday() {
        // 2024-03-03 is a Sunday.
        assert_eq!(
            next("cron(0 0 ? * 1 *)", "2024-03-01T00:00:00Z").as_deref(),
            Some("2024-03-03T00:00")
        );
        assert_eq!(
            next("cron(0 0 ? * SUN *)", "2024-03-01T00:00:00Z").as_deref(),
            Some("2024-03-03T00:00")
        );
        assert_eq!(
            next("cron(0 0 ? * 7 *)", "2024-03-01T00:00:00Z").as_deref(),
            Some("2024-03-02T00:00")
        );
    }

    #[test]
    fn cron_fires_strictly_after_and_at_whole_minutes() {
        let expr = "cron(0 6 * * ? *)";
        assert_eq!(
            next(expr, "2024-03-01T05:59:59.999999999Z").as_deref(),
            Some("2024-03-01T06:00")
        );
        assert_eq!(
            next(expr, "2024-03-01T06:00:00Z").as_deref(),
            Some("2024-03-02T06:00")
        );
        assert_eq!(
            next(expr, "2024-03-01T06:00:00.000000001Z").as_deref(),
            Some("2024-03-02T06:00")
        );
        let fire = schedule(expr)
            .next_after(at("2024-03-01T05:00:00.5Z"), at("2024-03-01T05:00:00Z"))
            .unwrap();
        assert_eq!(fire, at("2024-03-01T06:00:00Z"));
    }

    #[test]
    fn cron_month_ends_and_leap_years() {
        assert_eq!(
            fires("cron(0 0 L * ? *)", "2023-12-31T00:00:00Z", 5),
            [
                "2024-01-31T00:00",
                "2024-02-29T00:00",
                "2024-03-31T00:00",
                "2024-04-30T00:00",
                "2024-05-31T00:00"
            ]
        );
        assert_eq!(
            next("cron(0 0 L 2 ? *)", "2023-01-01T00:00:00Z").as_deref(),
            Some("2023-02-28T00:00")
        );
        assert_eq!(
            next("cron(0 0 L 2 ? *)", "2100-01-01T00:00:00Z").as_deref(),
            Some("2100-02-28T00:00")
        );
        assert_eq!(
            next("cron(0 0 L 2 ? *)", "2000-01-01T00:00:00Z").as_deref(),
            Some("2000-02-29T00:00")
        );
        // The 31st skips the months without one.
        assert_eq!(
            fires("cron(0 0 31 * ? *)", "2024-01-31T00:00:00Z", 3),
            ["2024-03-31T00:00", "2024-05-31T00:00", "2024-07-31T00:00"]
        );
        // Feb 29 fires only in leap years; 2100 is not one.
        assert_eq!(
            fires("cron(0 12 29 2 ? *)", "2024-02-29T12:00:00Z", 3),
            ["2028-02-29T12:00", "2032-02-29T12:00", "2036-02-29T12:00"]
        );
        assert_eq!(
            fires("cron(0 12 29 2 ? *)", "2096-03-01T00:00:00Z", 1),
            ["2104-02-29T12:00"]
        );
        assert_eq!(
            next("cron(0 0 29 FEB ? 2100-2103)", "2000-01-01T00:00:00Z"),
            None
        );
    }

    #[test]
    fn cron_nearest_weekday() {
        // The 15th: Wednesday in May, Saturday in June (-> Friday), Sunday in September (->
        // Monday) 2024.
        assert_eq!(
            next("cron(0 0 15W * ? *)", "2024-05-01T00:00:00Z").as_deref(),
            Some("2024-05-15T00:00")
        );
        assert_eq!(
            next("cron(0 0 15W * ? *)", "2024-06-01T00:00:00Z").as_deref(),
            Some("2024-06-14T00:00")
        );
        assert_eq!(
            next("cron(0 0 15W * ? *)", "2024-09-01T00:00:00Z").as_deref(),
            Some("2024-09-16T00:00")
        );
        // A Saturday 1st moves forward to Monday the 3rd, not back into the previous month.
        assert_eq!(
            next("cron(0 0 1W * ? *)", "2024-05-31T00:00:00Z").as_deref(),
            Some("2024-06-03T00:00")
        );
        // A Sunday 1st moves to Monday the 2nd.
        assert_eq!(
            next("cron(0 0 1W * ? *)", "2026-01-31T00:00:00Z").as_deref(),
            Some("2026-02-02T00:00")
        );
        // A Sunday last day moves back to Friday, not into the next month.
        assert_eq!(
            next("cron(0 0 31W * ? *)", "2024-03-01T00:00:00Z").as_deref(),
            Some("2024-03-29T00:00")
        );
        assert_eq!(
            next("cron(0 0 30W 4 ? *)", "2023-01-01T00:00:00Z").as_deref(),
            Some("2023-04-28T00:00")
        );
        assert_eq!(
            next("cron(0 0 29W 2 ? *)", "2032-01-01T00:00:00Z").as_deref(),
            Some("2032-02-27T00:00")
        );
        // No 31st in April: 31W does not fire there at all.
        assert_eq!(
            next("cron(0 0 31W 4,5 ? *)", "2024-04-01T00:00:00Z").as_deref(),
            Some("2024-05-31T00:00")
        );
        // Last weekday: Saturday 31st -> 30th, Sunday 31st -> 29th, Thursday 29th stays.
        assert_eq!(
            next("cron(0 0 LW * ? *)", "2024-08-01T00:00:00Z").as_deref(),
            Some("2024-08-30T00:00")
        );
        assert_eq!(
            next("cron(0 0 LW * ? *)", "2024-03-01T00:00:00Z").as_deref(),
            Some("2024-03-29T00:00")
        );
        assert_eq!(
            next("cron(0 0 LW * ? *)", "2024-02-01T00:00:00Z").as_deref(),
            Some("2024-02-29T00:00")
        );
    }

    #[test]
    fn cron_nth_and_last_weekdays() {
        // Third Friday of each month of 2024: 19, 16, 15.
        assert_eq!(
            fires("cron(0 9 ? * 6#3 *)", "2024-01-01T00:00:00Z", 3),
            ["2024-01-19T09:00", "2024-02-16T09:00", "2024-03-15T09:00"]
        );
        assert_eq!(
            next("cron(0 9 ? * FRI#3 *)", "2024-02-16T09:00:00Z").as_deref(),
            Some("2024-03-15T09:00")
        );
        // A fifth Monday exists only in some months.
        assert_eq!(
            fires("cron(0 0 ? * 2#5 *)", "2024-01-01T00:00:00Z", 4),
            [
                "2024-01-29T00:00",
                "2024-04-29T00:00",
                "2024-07-29T00:00",
                "2024-09-30T00:00"
            ]
        );
        // Last Friday (6L) and last Thursday (5L).
        assert_eq!(
            fires("cron(0 0 ? * 6L *)", "2024-01-01T00:00:00Z", 3),
            ["2024-01-26T00:00", "2024-02-23T00:00", "2024-03-29T00:00"]
        );
        assert_eq!(
            fires("cron(0 0 ? * THUL *)", "2024-10-01T00:00:00Z", 2),
            ["2024-10-31T00:00", "2024-11-28T00:00"]
        );
        // `L` alone in day-of-week is every Saturday.
        assert_eq!(
            fires("cron(0 0 ? * L *)", "2024-03-01T00:00:00Z", 2),
            ["2024-03-02T00:00", "2024-03-09T00:00"]
        );
        // Lists mix the forms.
        assert_eq!(
            fires("cron(0 0 ? * 2#1,6L 2024)", "2023-12-31T00:00:00Z", 3),
            ["2024-01-01T00:00", "2024-01-26T00:00", "2024-02-05T00:00"]
        )
    }

    #[test]
    fn cron_year_bounds_and_expressions_that_stop() {
        assert_eq!(
            next("cron(0 0 1 1 ? *)", "1960-05-01T00:00:00Z").as_deref(),
            Some("1970-01-01T00:00")
        );
        assert_eq!(
            next("cron(0 0 1 1 ? 2199)", "2150-01-01T00:00:00Z").as_deref(),
            Some("2199-01-01T00:00")
        );
        assert_eq!(next("cron(0 0 1 1 ? 2199)", "2199-01-01T00:00:00Z"), None);
        assert_eq!(
            next("cron(59 23 31 12 ? *)", "2199-12-31T23:58:00Z").as_deref(),
            Some("2199-12-31T23:59")
        );
        assert_eq!(next("cron(59 23 31 12 ? *)", "2199-12-31T23:59:00Z"), None);
        assert_eq!(next("cron(* * * * ? *)", "2300-01-01T00:00:00Z"), None);
        assert_eq!(next("cron(0 0 1 1 ? 2020)", "2021-01-01T00:00:00Z"), None);
        assert_eq!(
            next("cron(0 0 1 1 ? 2030/5)", "2031-01-01T00:00:00Z").as_deref(),
            Some("2035-01-01T00:00")
        );
        // February never has a 30th.
        assert_eq!(next("cron(0 0 30 2 ? *)", "1970-01-01T00:00:00Z"), None);
        assert_eq!(next("cron(0 0 ? 2 2#5 2023)", "2023-01-01T00:00:00Z"), None);
        let end = schedule("cron(* * * * ? *)");
        let Schedule::Cron(every_minute) = &end else {
            panic!("not a cron");
        };
        assert!(every_minute.matches(at("2199-12-31T23:59:59Z")));
        assert!(!every_minute.matches(at("2200-01-01T00:00:00Z")));
        assert!(!every_minute.matches(at("1969-12-31T23:59:59Z")));
        assert_eq!(
            end.next_after(DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC),
            None
        );
    }

    #[test]
    fn cron_looks_back() {
        let anchor = at("2000-01-01T00:00:00Z");
        let back = |expr: &str, at_text: &str| {
            schedule(expr)
                .last_at_or_before(at(at_text), anchor)
                .map(|fire| fire.format("%Y-%m-%dT%H:%M").to_string())
        };
        assert_eq!(
            back("cron(0 6 * * ? *)", "2024-03-01T06:00:00Z").as_deref(),
            Some("2024-03-01T06:00")
        );
        assert_eq!(
            back("cron(0 6 * * ? *)", "2024-03-01T05:59:59.999Z").as_deref(),
            Some("2024-02-29T06:00")
        );
        assert_eq!(
            back("cron(0 0 L * ? *)", "2024-03-15T00:00:00Z").as_deref(),
            Some("2024-02-29T00:00")
        );
        assert_eq!(
            back("cron(0 9 ? * 6#3 *)", "2024-03-15T08:59:00Z").as_deref(),
            Some("2024-02-16T09:00")
        );
        assert_eq!(back("cron(0 0 1 1 ? *)", "1969-12-31T23:59:00Z"), None);
        assert_eq!(
            back("cron(0 0 1 1 ? *)", "1970-01-01T00:00:30Z").as_deref(),
            Some("1970-01-01T00:00")
        );
        assert_eq!(back("cron(0 0 1 1 ? 2030)", "2029-12-31T23:59:00Z"), None);
        assert_eq!(
            back("cron(0 0 1 1 ? *)", "2500-06-01T00:00:00Z").as_deref(),
            Some("2199-01-01T00:00")
        );
        assert_eq!(back("cron(0 0 30 2 ? *)", "2100-01-01T00:00:00Z"), None);
    }

    /// Walking minute by minute with `matches` finds exactly the fires that `next_after` and
    /// `last_at_or_before` jump to.
    #[test]
    fn cron_search_agrees_with_a_minute_by_minute_scan() {
        let anchor = at("2000-01-01T00:00:00Z");
        for expr in [
            "cron(*/7 */5 * * ? *)",
            "cron(0,30 22-2 ? * FRI-MON *)",
            "cron(15 3 L,15W,1 * ? *)",
            "cron(0 12 ? * 2#1,6L,1 *)",
            "cron(45 23 LW * ? *)",
            "cron(0 0 28-3 * ? *)",
        ] {
            let Schedule::Cron(cron) = schedule(expr) else {
                panic!("{expr} is not a cron");
            };
            let start = at("2024-02-20T00:00:00Z");
            let expected: Vec<DateTime<Utc>> = (0..60 * 24 * 45)
                .map(|minute| start + TimeDelta::minutes(minute))
                .filter(|instant| cron.matches(*instant))
                .collect();
            assert!(!expected.is_empty(), "{expr} never matched");
            let mut cursor = start - TimeDelta::nanoseconds(1);
            for fire in &expected {
                let next = schedule(expr).next_after(cursor, anchor);
                assert_eq!(next, Some(*fire), "{expr} after {cursor}");
                assert_eq!(
                    cron.last_at_or_before(*fire + TimeDelta::seconds(59)),
                    Some(*fire)
                );
                cursor = *fire;
            }
            for pair in expected.windows(2) {
                let before = pair[1] - TimeDelta::nanoseconds(1);
                assert_eq!(
                    cron.last_at_or_before(before),
                    Some(pair[0]),
                    "{expr} before {}",
                    pair[1]
                );
            }
        }
    }

    #[test]
    fn wrapping_steps() {
        assert_eq!(
            wrapping(22, 2, 0, 23, 1).collect::<Vec<_>>(),
            [22, 23, 0, 1, 2]
        );
        assert_eq!(wrapping(50, 10, 0, 59, 10).collect::<Vec<_>>(), [50, 0, 10]);
        assert_eq!(wrapping(5, 5, 0, 59, 1).collect::<Vec<_>>(), [5]);
        assert_eq!(wrapping(0, 59, 0, 59, 30).collect::<Vec<_>>(), [0, 30]);
    }
}
