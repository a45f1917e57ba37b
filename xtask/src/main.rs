//! # xtask
//!
//! shiplog's development tasks, run as `cargo xtask <task>`:
//!
//! - `ci`: everything CI checks, in order: formatting, clippy (warnings are errors), the
//!   architecture check, `tidy`, the domain crate's docs and `cargo publish --dry-run`, every test of the workspace (after installing Chromium for the browser
//!   tests when it is missing), and schemathesis against the OpenAPI
//!   document of a running server (`schemathesis`, also a task of its own), then the release
//!   archive and the container image, each tried with the README's walkthrough
//!   (`release-check`, see [`dist`]).
//! - `arch`: the architecture check alone (see [`arch`]).
//! - `tidy`: the documents name only paths, crates and items that exist (see [`tidy`]).
//! - `codegen`: rewrites generated documentation (`docs/status-normalization.md`).
//! - `dist`, `image`, `release-check`: the release archive, the container image, and both
//!   tried as users would (see [`dist`]).
//!
//! It must never be a dependency of a shiplog crate, and it never changes tracked files except
//! through `codegen`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod arch;
mod dist;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

type Result<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let outcome = match task {
        "ci" => ci(),
        "arch" => arch::run(&workspace_root()),
        "tidy" => tidy::run(&workspace_root()),
        "codegen" => codegen(),
        "schemathesis" => schemathesis(),
        "tools" => browser(),
        "bench" => bench(args.get(1).map(String::as_str)),
        "dist" => dist::dist(&workspace_root()).map(|_| ()),
        "image" => dist::image(&workspace_root()).map(|_| ()),
        "release-check" => dist::release_check(&workspace_root()),
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\n\
                 tasks:\n  \
                 ci        fmt --check, clippy -D warnings, architecture check, all tests\n  \
                 arch      check that dependencies point inward only\n  \
                 tidy      check that the documents name only paths, crates and items that exist\n  \
                 codegen   rewrite generated docs (docs/status-normalization.md)\n  \
                 schemathesis  every schemathesis check against a running server (SQLite)\n  \
                 tools     install what the browser tests need (Chromium, chromedriver, Go, axe-core)\n  \
                 dist      the release archive and SHA256SUMS in target/dist\n  \
                 image     the container image localhost/shiplog:<version> and its OCI archive\n  \
                 release-check  both built, then the README walkthrough against each\n  \
                 bench store   durable ingests/s on SQLite and PostgreSQL beside the fsync rate
                 bench dora    the DORA metrics query over 1,000,000 deployments, both backends
                 bench http    ingests/s through HTTP against the release binary, both backends,
                               beside echo, fsync and INSERT references
                 bench import  1,000,000 deployments through POST /api/v1/import, both backends,
                               beside a live ingest and the same-run references
                 bench dashboard  the dashboard's pages over the bench dora history
                 bench lifecycle  backup, restore, retention and deletion over that history"
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
    tidy::run(&workspace_root())?;
    domain_library()?;
    // Tests that find no PostgreSQL (outside CI) return early, which cargo counts as passed;
    // they leave their names here so the totals say how many were skipped.
    let skipped_log = workspace_root().join("target").join("postgres-skipped.log");
    let _ = std::fs::remove_file(&skipped_log);
    browser()?;
    let mut totals = TestTotals::default();
    cargo_test(
        &["test", "--workspace", "--doc", "--all-features"],
        &skipped_log,
        &mut totals,
    )?;
    cargo_test(
        &["test", "--workspace", "--all-targets", "--all-features"],
        &skipped_log,
        &mut totals,
    )?;
    let skipped = skipped_postgres_tests(&skipped_log);
    if skipped > 0 {
        totals.passed = totals.passed.saturating_sub(skipped);
        totals.ignored += skipped;
        println!(
            "\nxtask ci: {skipped} tests were SKIPPED: PostgreSQL or Chromium could not be used \
             here (see \"skipping\" above); they are counted as skipped, not passed. Under \
             CI=true they fail instead."
        );
    }
    if totals.passed == 0 {
        return Err("no test ran".to_owned());
    }
    schemathesis()?;
    dist::release_check(&workspace_root())?;
    println!("\nxtask ci: all checks passed");
    // The plain closing line CI reads.
    println!(
        "tests: {} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.ignored
    );
    Ok(())
}

/// The domain crate is a library others embed: its docs build without a warning and it
/// packages and builds as crates.io would take it.
fn domain_library() -> Result<()> {
    let program = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    println!("\n$ RUSTDOCFLAGS='-D warnings' cargo doc -p shiplog-domain --no-deps");
    let status = Command::new(&program)
        .args(["doc", "-p", "shiplog-domain", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings")
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "`cargo doc -p shiplog-domain` warned or failed ({status})"
        ));
    }
    cargo(&[
        "publish",
        "--dry-run",
        "-p",
        "shiplog-domain",
        "--allow-dirty",
    ])
}

/// How many distinct tests left their name in the skipped log.
fn skipped_postgres_tests(log: &Path) -> u64 {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let names: std::collections::BTreeSet<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    u64::try_from(names.len()).unwrap_or(u64::MAX)
}

/// Test counts added up over every test binary.
#[derive(Debug, Default, PartialEq, Eq)]
struct TestTotals {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl TestTotals {
    /// Adds the counts of a `test result: ok. 3 passed; 0 failed; 1 ignored; …` line.
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match label {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "ignored" => self.ignored += count,
                _ => {}
            }
        }
    }
}

/// Runs `cargo test …`, echoing its output while adding up its results; tests that skip
/// PostgreSQL write their names to `skipped_log`.
fn cargo_test(args: &[&str], skipped_log: &Path, totals: &mut TestTotals) -> Result<()> {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    println!("\n$ cargo {}", args.join(" "));
    let mut child = Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .env("SHIPLOG_TEST_SKIPPED_LOG", skipped_log)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| format!("cannot read test output: {e}"))?;
            println!("{line}");
            totals.add_line(&line);
        }
    }
    let status = child.wait().map_err(|e| format!("cargo test: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

/// Makes sure the browser tests (`tests/browser.rs`) have headless Chromium and chromedriver:
/// when either is missing, installs Debian's `chromium` and `chromium-driver` with apt-get (as
/// root). Where that cannot be done the browser tests skip, except under `CI=true`, where this
/// fails.
fn browser() -> Result<()> {
    debian_packages(
        &[
            ("chromium", "chromium"),
            ("chromedriver", "chromium-driver"),
            ("go", "golang-go"),
        ],
        "the browser tests need Chromium and its driver, the Argo CD template test Go",
    )?;
    node_tools()
}

/// The npm packages the browser tests use, pinned: axe-core, the accessibility rules every
/// page is checked against (`tests/browser.rs`), and oidc-provider, the OpenID provider the
/// sign-in tests run (`tests/sso.rs`, `tests/oidc/provider.mjs`).
const NODE_TOOLS: [&str; 2] = ["axe-core@4.14.1", "oidc-provider@9.6.0"];

/// Installs [`NODE_TOOLS`] into `target/node-tools` with npm, the first time. Without npm or
/// the registry the accessibility checks skip, except under `CI=true`, where this fails.
fn node_tools() -> Result<()> {
    let prefix = workspace_root().join("target").join("node-tools");
    if prefix.join("node_modules/axe-core/axe.min.js").is_file()
        && prefix
            .join("node_modules/oidc-provider/package.json")
            .is_file()
    {
        return Ok(());
    }
    println!(
        "\n$ npm install --prefix target/node-tools {}",
        NODE_TOOLS.join(" ")
    );
    let installed = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
        .arg(&prefix)
        .args(NODE_TOOLS)
        .status()
        .is_ok_and(|s| s.success());
    if installed {
        return Ok(());
    }
    let why = format!(
        "cannot install {} into target/node-tools (npm and its registry)",
        NODE_TOOLS.join(" ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        return Err(why);
    }
    println!(
        "xtask: {why}; the accessibility and sign-in checks will skip, and under CI=true this fails"
    );
    Ok(())
}

/// Whether a command of that name is on `PATH`.
fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}

/// Installs the Debian packages whose commands are missing (`(command, package)`), with
/// `apt-get` when running as root; else says so, and fails under `CI=true`.
fn debian_packages(needed: &[(&str, &str)], why: &str) -> Result<()> {
    let missing: Vec<&str> = needed
        .iter()
        .filter(|(command, _)| !on_path(command))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let installed = root && on_path("apt-get") && {
        println!(
            "\n$ apt-get update && apt-get install -y {}",
            missing.join(" ")
        );
        let run = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success())
        };
        let mut install = vec!["install", "-y", "-qq"];
        install.extend(&missing);
        run(&["update", "-qq"]) && run(&install)
    };
    if installed {
        return Ok(());
    }
    let why = format!(
        "{} not installed and could not be installed (apt-get as root); {why}",
        missing.join(", ")
    );
    if ci {
        return Err(why);
    }
    println!("xtask: {why}; those tests will skip, and under CI=true this fails");
    Ok(())
}

/// The Python tools CI uses, pinned (their checks change between releases): schemathesis
/// against the OpenAPI document, kubernetes-validate for docs/deploy/kubernetes.yaml (with
/// PyYAML and jsonschema, which schemathesis brings, for docs/deploy/compose.yaml).
const PYTHON_TOOLS: [&str; 2] = ["schemathesis==4.32.5", "kubernetes-validate==1.37.0"];

/// The Python virtual environment in `target/` with [`PYTHON_TOOLS`], created the first time;
/// its `bin` directory. Without Python or the package index: `None` after saying so, except
/// under `CI=true`, where it fails.
fn python_tools() -> Result<Option<PathBuf>> {
    let venv = workspace_root().join("target").join("python-venv");
    let bin = venv.join("bin");
    if bin.join("schemathesis").is_file() && bin.join("kubernetes-validate").is_file() {
        return Ok(Some(bin));
    }
    println!(
        "\n$ python3 -m venv target/python-venv && pip install {}",
        PYTHON_TOOLS.join(" ")
    );
    let created = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(bin.join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(PYTHON_TOOLS)
            .status()
            .is_ok_and(|s| s.success());
    if created {
        return Ok(Some(bin));
    }
    let why = format!(
        "cannot install {} into target/python-venv (python3 -m venv and pip from the package index)",
        PYTHON_TOOLS.join(" ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        return Err(why);
    }
    println!("xtask: SKIPPED the checks that need them: {why}; under CI=true this fails");
    Ok(None)
}

/// Runs every schemathesis check against a fresh server (`tests/schemathesis/run.py`), with
/// [`python_tools`].
fn schemathesis() -> Result<()> {
    let root = workspace_root();
    let Some(bin) = python_tools()? else {
        return Ok(());
    };
    let command = bin.join("schemathesis");
    cargo(&["build", "-p", "shiplog-server"])?;
    let python = bin.join("python");
    let status = Command::new(&python)
        .arg(root.join("tests").join("schemathesis").join("run.py"))
        .arg(root.join("target").join("debug").join("shiplog"))
        .arg(&command)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("schemathesis found failures ({status})"))
    }
}

fn bench(which: Option<&str>) -> Result<()> {
    match which {
        Some("store") => cargo(&["bench", "-p", "shiplog-store", "--bench", "store"]),
        Some("dora") => cargo(&["bench", "-p", "shiplog-store", "--bench", "dora"]),
        Some("lifecycle") => cargo(&["bench", "-p", "shiplog-store", "--bench", "lifecycle"]),
        Some("http") => cargo(&["bench", "-p", "shiplog-server", "--bench", "http"]),
        Some("import") => cargo(&["bench", "-p", "shiplog-server", "--bench", "import"]),
        Some("dashboard") => cargo(&["bench", "-p", "shiplog-blackbox", "--bench", "dashboard"]),
        other => Err(format!(
            "unknown benchmark {other:?}: use `cargo xtask bench http`, `import`, `store`, `dora`, `dashboard` or `lifecycle`"
        )),
    }
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

#[cfg(test)]
mod tests {
    use super::TestTotals;

    #[test]
    fn test_result_lines_are_added_up() {
        let mut totals = TestTotals::default();
        totals.add_line("test result: ok. 58 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.05s");
        totals.add_line(
            "test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out",
        );
        totals.add_line("test something ... ok");
        assert_eq!(
            totals,
            TestTotals {
                passed: 61,
                failed: 1,
                ignored: 2
            }
        );
    }
}
