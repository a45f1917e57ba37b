//! The domain's suites: property tests and the generated documents, one module each.

mod generated_docs;
mod properties;
