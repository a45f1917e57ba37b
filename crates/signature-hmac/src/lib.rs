//! # shiplog-signature
//!
//! HMAC-SHA256 signatures: verification of inbound signed requests (the Envtracker scheme,
//! GitHub's `X-Hub-Signature-256`, Standard Webhooks) and signing of outgoing deliveries. It will
//! implement the `SignatureVerifier` port of `shiplog-app`.
//!
//! Status: an empty shell until the HTTP issue lands.
//!
//! ## What this crate must never do
//! It never compares a signature in variable time, never logs a secret or a signature, and never
//! performs I/O.
