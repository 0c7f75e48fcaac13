//! A clock that only moves when told to, for tests of anything that schedules.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use sluice_types::Clock;

/// A [`Clock`] set by hand. Clones share the same time.
///
/// Moving it does not wake anything up by itself: a [`crate::Scheduler`] driven by it needs
/// [`crate::Scheduler::wake`] (or [`crate::Scheduler::run_due`]) after the clock moved.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(now)),
        }
    }

    /// Sets the time, forwards or backwards.
    pub fn set(&self, now: DateTime<Utc>) {
        *self.lock() = now;
    }

    /// Moves the time by `delta` (negative moves it back); saturates at the ends of time.
    pub fn advance(&self, delta: TimeDelta) {
        let mut now = self.lock();
        *now = now
            .checked_add_signed(delta)
            .unwrap_or(if delta > TimeDelta::zero() {
                DateTime::<Utc>::MAX_UTC
            } else {
                DateTime::<Utc>::MIN_UTC
            });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // Only plain assignments happen under the lock, so a poisoned one still holds a valid
        // time.
        self.now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_time() {
        let start: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
        let clock = ManualClock::new(start);
        let other = clock.clone();
        clock.advance(TimeDelta::minutes(90));
        assert_eq!(other.now(), start + TimeDelta::minutes(90));
        other.advance(TimeDelta::minutes(-30));
        assert_eq!(clock.now(), start + TimeDelta::hours(1));
        clock.set(start);
        assert_eq!(other.now(), start);
        clock.advance(TimeDelta::MAX);
        assert_eq!(clock.now(), DateTime::<Utc>::MAX_UTC);
    }
}
