//! Validated domain rules of flows, profiles and schedules; connector capabilities.
