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
//! Only the grammar and ranges are checked here; computing fire times belongs to the scheduler.

use std::fmt;

use chrono::TimeDelta;

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
            Self::Rate(rate) => rate.unit.length() * rate.value as i32,
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
            // Only day fields take these, and they do not select minutes or hours.
            _ => {}
        }
    }
    (min..=max).filter(|v| selected[*v as usize]).collect()
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
