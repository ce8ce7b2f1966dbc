//! Shared helpers for the cross-component test suites live here.
