//! # xtask
//!
//! shiplog's development tasks, run as `cargo xtask <task>`:
//!
//! - `ci`: everything CI checks, in order: formatting, clippy (warnings are errors), the
//!   architecture check, and every test of the workspace.
//! - `arch`: the architecture check alone (see [`arch`]).
//! - `codegen`: rewrites generated documentation (`docs/status-normalization.md`).
//!
//! It must never be a dependency of a shiplog crate, and it never changes tracked files except
//! through `codegen`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod arch;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

type Result<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let outcome = match task {
        "ci" => ci(),
        "arch" => arch::run(&workspace_root()),
        "codegen" => codegen(),
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\n\
                 tasks:\n  \
                 ci        fmt --check, clippy -D warnings, architecture check, all tests\n  \
                 arch      check that dependencies point inward only\n  \
                 codegen   rewrite generated docs (docs/status-normalization.md)"
            );
            return if task == "help" || task == "--help" {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask {task}: {message}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Runs `cargo <args>` in the workspace root, failing on a non-zero exit.
fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    println!("\n$ cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

fn ci() -> Result<()> {
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ])?;
    arch::run(&workspace_root())?;
    cargo(&["test", "--workspace", "--all-targets", "--all-features"])?;
    cargo(&["test", "--workspace", "--doc", "--all-features"])?;
    println!("\nxtask ci: all checks passed");
    Ok(())
}

fn codegen() -> Result<()> {
    let path = workspace_root().join("docs/status-normalization.md");
    let text = shiplog_domain::status::matrix_markdown();
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current == text {
        println!("{} is up to date", path.display());
        return Ok(());
    }
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}
