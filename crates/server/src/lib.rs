//! The AppFlow-compatible HTTP control API: routing, SigV4, validation, handlers, run manager.
