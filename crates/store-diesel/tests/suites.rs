//! The store's suites against both backends, one module each, in one test binary; the
//! fixtures they share are `support`. `statements` is a binary of its own: it installs diesel's
//! process-wide instrumentation.

// First: its `on_both_backends!` is used by the suites after it.
#[macro_use]
mod support;

mod contract;
mod dora;
mod durability;
mod lifecycle;
mod migrations;
