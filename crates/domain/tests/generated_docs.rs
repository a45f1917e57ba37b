//! `docs/status-normalization.md` is generated from the code; this test fails when they drift.
//! Run `cargo xtask codegen` to rewrite it.

use std::path::PathBuf;

#[test]
fn status_normalization_doc_is_up_to_date() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/status-normalization.md");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; run `cargo xtask codegen`",
            path.display()
        )
    });
    let generated = shiplog_domain::status::matrix_markdown();
    assert!(
        on_disk == generated,
        "{} is out of date with crates/domain/src/status.rs; run `cargo xtask codegen` and commit the result",
        path.display()
    );
}
