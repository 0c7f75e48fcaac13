//! The explicit registry of connectors compiled into Sluice.
