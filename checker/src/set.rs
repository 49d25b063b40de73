//! The set checker: lost, unexpected and stale elements (being built).
