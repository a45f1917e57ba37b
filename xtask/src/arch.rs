//! The architecture check: dependencies point inward only.
//!
//! Read from `cargo metadata`'s resolved graph, following normal (not dev, not build)
//! dependencies transitively:
//! - `shiplog-domain` reaches no I/O, async-runtime, web or database crate, and its direct
//!   dependencies are all on [`DOMAIN_ALLOWED`] (adding one is a reviewed edit of this file);
//! - `shiplog-app` reaches neither actix-web nor diesel (nor any database driver);
//! - each shiplog crate depends only on the shiplog crates of the layers inside it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Crate-name prefixes that mean I/O, an async runtime, HTTP or a database.
const IO_PREFIXES: &[&str] = &[
    "actix",
    "diesel",
    "tokio",
    "async-std",
    "smol",
    "mio",
    "hyper",
    "reqwest",
    "h2",
    "socket2",
    "sqlx",
    "rusqlite",
    "libsqlite3-sys",
    "pq-sys",
    "postgres",
    "tokio-postgres",
    "mysqlclient-sys",
    "rustls",
    "native-tls",
    "openssl",
    "tracing-subscriber",
    "ureq",
    "isahc",
    "curl",
];

/// What `shiplog-app` must never reach (it may use an async runtime's traits, not a framework or
/// a driver).
const APP_FORBIDDEN_PREFIXES: &[&str] = &[
    "actix",
    "diesel",
    "sqlx",
    "rusqlite",
    "libsqlite3-sys",
    "pq-sys",
    "postgres",
    "tokio-postgres",
    "hyper",
    "reqwest",
];

/// The only direct dependencies `shiplog-domain` may have. `utoipa` is optional (the `openapi`
/// feature) and only derives schema descriptions of the types the API shows.
const DOMAIN_ALLOWED: &[&str] = &["rustc-hash", "serde", "sha2", "thiserror", "time", "utoipa"];

/// Which shiplog crates each shiplog crate may depend on.
const LAYERS: &[(&str, &[&str])] = &[
    ("shiplog-domain", &[]),
    ("shiplog-app", &["shiplog-domain"]),
    ("shiplog-signature", &["shiplog-app", "shiplog-domain"]),
    ("shiplog-store", &["shiplog-app", "shiplog-domain"]),
    ("shiplog-http", &["shiplog-app", "shiplog-domain"]),
    ("shiplog-sender", &["shiplog-app", "shiplog-domain"]),
    ("shiplog-oidc", &["shiplog-app", "shiplog-domain"]),
    // The dashboard shares the API adapter's error-status table and panic guard.
    (
        "shiplog-web",
        &["shiplog-app", "shiplog-domain", "shiplog-http"],
    ),
    (
        "shiplog-server",
        &[
            "shiplog-app",
            "shiplog-domain",
            "shiplog-http",
            "shiplog-oidc",
            "shiplog-sender",
            "shiplog-signature",
            "shiplog-store",
            "shiplog-web",
        ],
    ),
];

/// Runs the check on the workspace at `root`.
pub(crate) fn run(root: &Path) -> super::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    println!("\n$ cargo metadata (architecture check)");
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata printed invalid JSON: {e}"))?;
    let violations = check(&metadata)?;
    if violations.is_empty() {
        println!("architecture check: dependencies point inward only");
        Ok(())
    } else {
        Err(format!(
            "architecture check failed:\n  {}",
            violations.join("\n  ")
        ))
    }
}

/// Package id → (name, normal dependency ids).
type Graph = BTreeMap<String, (String, Vec<String>)>;

fn graph(metadata: &Value) -> super::Result<Graph> {
    let mut names = BTreeMap::new();
    for package in metadata["packages"].as_array().ok_or("no packages")? {
        let id = package["id"].as_str().ok_or("package without id")?;
        let name = package["name"].as_str().ok_or("package without name")?;
        names.insert(id.to_owned(), name.to_owned());
    }
    let mut graph = Graph::new();
    for node in metadata["resolve"]["nodes"]
        .as_array()
        .ok_or("no resolve graph")?
    {
        let id = node["id"].as_str().ok_or("node without id")?.to_owned();
        let normal: Vec<String> = node["deps"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|dep| {
                dep["dep_kinds"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|k| k["kind"].is_null()))
            })
            .filter_map(|dep| dep["pkg"].as_str().map(str::to_owned))
            .collect();
        let name = names.get(&id).cloned().unwrap_or_else(|| id.clone());
        graph.insert(id, (name, normal));
    }
    Ok(graph)
}

/// Names of everything `start` reaches through normal dependencies, each with the path to it.
fn reachable(graph: &Graph, start: &str) -> BTreeMap<String, String> {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut visited: BTreeSet<&str> = BTreeSet::new();
    let mut stack: Vec<(&str, String)> = Vec::new();
    for (id, (name, _)) in graph {
        if name == start {
            stack.push((id, name.clone()));
        }
    }
    while let Some((id, path)) = stack.pop() {
        if !visited.insert(id) {
            continue;
        }
        let Some((_, deps)) = graph.get(id) else {
            continue;
        };
        for dep in deps {
            let Some((dep_name, _)) = graph.get(dep) else {
                continue;
            };
            let dep_path = format!("{path} → {dep_name}");
            seen.entry(dep_name.clone())
                .or_insert_with(|| dep_path.clone());
            stack.push((dep, dep_path));
        }
    }
    seen
}

fn direct(graph: &Graph, start: &str) -> BTreeSet<String> {
    graph
        .values()
        .filter(|(name, _)| name == start)
        .flat_map(|(_, deps)| {
            deps.iter()
                .filter_map(|d| graph.get(d).map(|(n, _)| n.clone()))
        })
        .collect()
}

fn matches_prefix(name: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| {
        name == *p || name.starts_with(&format!("{p}-")) || name.starts_with(&format!("{p}_"))
    })
}

/// Every rule broken by the dependency graph in `metadata`.
pub(crate) fn check(metadata: &Value) -> super::Result<Vec<String>> {
    let graph = graph(metadata)?;
    let mut violations = Vec::new();
    for (name, path) in reachable(&graph, "shiplog-domain") {
        if matches_prefix(&name, IO_PREFIXES) {
            violations.push(format!(
                "shiplog-domain must not depend on I/O crate {name} ({path})"
            ));
        }
    }
    for name in direct(&graph, "shiplog-domain") {
        if !DOMAIN_ALLOWED.contains(&name.as_str()) {
            violations.push(format!(
                "shiplog-domain depends on {name}, which is not on xtask's list of pure crates \
                 (DOMAIN_ALLOWED in xtask/src/arch.rs); the domain stays free of I/O"
            ));
        }
    }
    for (name, path) in reachable(&graph, "shiplog-app") {
        if matches_prefix(&name, APP_FORBIDDEN_PREFIXES) {
            violations.push(format!(
                "shiplog-app must not depend on framework or driver crate {name} ({path})"
            ));
        }
    }
    for (krate, allowed) in LAYERS {
        for dep in direct(&graph, krate) {
            if dep.starts_with("shiplog-") && !allowed.contains(&dep.as_str()) {
                violations.push(format!(
                    "{krate} must not depend on {dep}: dependencies point inward only"
                ));
            }
        }
    }
    Ok(violations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A metadata document with the given packages and normal edges.
    fn metadata(edges: &[(&str, &[&str])]) -> Value {
        let mut names: BTreeSet<&str> = BTreeSet::new();
        for (from, tos) in edges {
            names.insert(from);
            names.extend(tos.iter());
        }
        let packages: Vec<Value> = names
            .iter()
            .map(|n| json!({"id": format!("{n} 0.1.0"), "name": n}))
            .collect();
        let nodes: Vec<Value> = names
            .iter()
            .map(|n| {
                let deps: Vec<Value> = edges
                    .iter()
                    .filter(|(from, _)| from == n)
                    .flat_map(|(_, tos)| tos.iter())
                    .map(|to| json!({"pkg": format!("{to} 0.1.0"), "dep_kinds": [{"kind": null}]}))
                    .collect();
                json!({"id": format!("{n} 0.1.0"), "deps": deps})
            })
            .collect();
        json!({"packages": packages, "resolve": {"nodes": nodes}})
    }

    const CLEAN: &[(&str, &[&str])] = &[
        ("shiplog-domain", &["serde", "thiserror", "time"]),
        ("shiplog-app", &["shiplog-domain", "async-trait", "tokio"]),
        (
            "shiplog-store",
            &["shiplog-app", "shiplog-domain", "diesel"],
        ),
        ("shiplog-http", &["shiplog-app", "actix-web"]),
        ("shiplog-server", &["shiplog-http", "shiplog-store"]),
        ("actix-web", &["tokio"]),
    ];

    #[test]
    fn a_clean_graph_passes() {
        assert_eq!(check(&metadata(CLEAN)).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn diesel_in_the_domain_fails() {
        let mut edges = CLEAN.to_vec();
        edges[0] = ("shiplog-domain", &["serde", "diesel"]);
        let violations = check(&metadata(&edges)).unwrap();
        assert!(
            violations
                .iter()
                .any(|v| v.contains("must not depend on I/O crate diesel")),
            "{violations:?}"
        );
    }

    #[test]
    fn an_io_crate_reached_transitively_fails() {
        let mut edges = CLEAN.to_vec();
        edges[0] = ("shiplog-domain", &["serde", "innocent"]);
        edges.push(("innocent", &["reqwest"]));
        let violations = check(&metadata(&edges)).unwrap();
        assert!(
            violations
                .iter()
                .any(|v| v.contains("reqwest (shiplog-domain → innocent → reqwest)")),
            "{violations:?}"
        );
        assert!(
            violations
                .iter()
                .any(|v| v.contains("innocent, which is not on"))
        );
    }

    #[test]
    fn actix_in_the_app_fails() {
        let mut edges = CLEAN.to_vec();
        edges[1] = ("shiplog-app", &["shiplog-domain", "actix-web"]);
        let violations = check(&metadata(&edges)).unwrap();
        assert!(
            violations.iter().any(|v| v
                .contains("shiplog-app must not depend on framework or driver crate actix-web")),
            "{violations:?}"
        );
    }

    #[test]
    fn an_outward_internal_dependency_fails() {
        let mut edges = CLEAN.to_vec();
        edges[2] = ("shiplog-store", &["shiplog-app", "shiplog-http"]);
        let violations = check(&metadata(&edges)).unwrap();
        assert_eq!(
            violations,
            vec!["shiplog-store must not depend on shiplog-http: dependencies point inward only"]
        );
    }

    #[test]
    fn dev_dependencies_do_not_count() {
        let mut doc = metadata(CLEAN);
        // Make the domain dev-depend on tokio.
        doc["packages"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": "tokio 0.1.0", "name": "tokio"}));
        let node = doc["resolve"]["nodes"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|n| n["id"] == "shiplog-domain 0.1.0")
            .unwrap();
        node["deps"]
            .as_array_mut()
            .unwrap()
            .push(json!({"pkg": "tokio 0.1.0", "dep_kinds": [{"kind": "dev"}]}));
        assert_eq!(check(&doc).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn the_real_workspace_passes() {
        run(&crate::workspace_root()).unwrap();
    }
}
