//! The `timestamp` shape: epoch seconds on the wire (restJson1 default), millisecond precision.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant, serialized as epoch seconds with millisecond precision (`1700000000.123`).
///
/// Deserialization also accepts an integer and an ISO-8601 string, which some tools send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// Builds a timestamp from epoch milliseconds.
    pub fn from_millis(millis: i64) -> Self {
        Self(
            Utc.timestamp_millis_opt(millis)
                .single()
                .unwrap_or_default(),
        )
    }

    /// Epoch milliseconds.
    pub fn millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    /// Parses epoch seconds (possibly fractional).
    pub fn from_epoch_seconds(seconds: f64) -> Option<Self> {
        if !seconds.is_finite() {
            return None;
        }
        let millis = (seconds * 1000.0).round();
        if millis.abs() > 8.64e15 {
            return None;
        }
        Utc.timestamp_millis_opt(millis as i64).single().map(Self)
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(value: DateTime<Utc>) -> Self {
        Self(value)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let millis = self.0.timestamp_millis();
        if millis % 1000 == 0 {
            serializer.serialize_i64(millis / 1000)
        } else {
            serializer.serialize_f64(millis as f64 / 1000.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        match &value {
            serde_json::Value::Number(n) => n
                .as_f64()
                .and_then(Self::from_epoch_seconds)
                .ok_or_else(|| serde::de::Error::custom("timestamp out of range")),
            serde_json::Value::String(s) => DateTime::parse_from_rfc3339(s)
                .map(|t| Self(t.with_timezone(&Utc)))
                .or_else(|_| {
                    s.parse::<f64>()
                        .ok()
                        .and_then(Self::from_epoch_seconds)
                        .ok_or(())
                })
                .map_err(|_| serde::de::Error::custom("expected epoch seconds or ISO-8601")),
            _ => Err(serde::de::Error::custom("expected epoch seconds")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_epoch_seconds() {
        let t: Timestamp = serde_json::from_str("1700000000.123").unwrap();
        assert_eq!(t.millis(), 1_700_000_000_123);
        assert_eq!(serde_json::to_string(&t).unwrap(), "1700000000.123");
        let whole: Timestamp = serde_json::from_str("1893456000").unwrap();
        assert_eq!(serde_json::to_string(&whole).unwrap(), "1893456000");
        let iso: Timestamp = serde_json::from_str("\"2030-01-01T00:00:00Z\"").unwrap();
        assert_eq!(iso, whole);
    }
}
