//! `cargo xtask tidy`: the documents name only what exists.
//!
//! Every Markdown document of the repository (`README.md`, `CHANGELOG.md`, `docs/`, each
//! crate's README) is read for three kinds of reference, in inline code spans and links (fenced
//! blocks are examples and are not read):
//!
//! - **paths** (`crates/store-diesel/src/conn.rs`, `migrations/postgres`, a link's target): the
//!   file or folder exists, from the repository root or from the document's folder;
//! - **crates** (`shiplog-store`): a package of the workspace, or a name the code spells in a
//!   string (a thread's name);
//! - **Rust paths** (`shiplog_app::ingest::decide`, `conn::Native`, `App::claim_due`): the
//!   modules exist as files or inline modules, and the items after them are defined in that
//!   crate (a `fn`, type, trait, constant, macro, enum variant or field of that name). A path
//!   whose first segment is another crate (`hmac::Mac`, `tokio::sync::watch`) is not ours to check.
//!
//! `cargo xtask ci` runs it; its tests plant a bad reference of each kind and expect it found.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::Result;

/// Checks every document; lists each reference to something that does not exist.
pub(crate) fn run(root: &Path) -> Result<()> {
    let index = Index::of(root)?;
    let mut problems = Vec::new();
    let mut checked = 0;
    for doc in documents(root) {
        let text = std::fs::read_to_string(&doc)
            .map_err(|e| format!("cannot read {}: {e}", doc.display()))?;
        let name = relative(root, &doc);
        let (count, found) = check(&index, &name, &text);
        checked += count;
        problems.extend(found);
    }
    if problems.is_empty() {
        println!("tidy: {checked} references in the documents, each names something that exists");
        Ok(())
    } else {
        for problem in &problems {
            eprintln!("{problem}");
        }
        Err(format!(
            "{} references in the documents name nothing that exists (above): fix the \
             document, or the code it describes",
            problems.len()
        ))
    }
}

/// The Markdown documents that describe the code.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut found = vec![root.join("README.md"), root.join("CHANGELOG.md")];
    let mut folders = vec![root.join("docs")];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                found.push(path);
            }
        }
    }
    if let Ok(crates) = std::fs::read_dir(root.join("crates")) {
        for entry in crates.flatten() {
            found.push(entry.path().join("README.md"));
        }
    }
    found.retain(|p| p.is_file());
    found.sort();
    found
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// What the documents may refer to: the workspace's crates and sources, other crates' names.
pub(crate) struct Index {
    root: PathBuf,
    /// Package names (`shiplog-store`).
    packages: BTreeSet<String>,
    /// Library names (`shiplog_store`) → the crate's folder.
    libraries: BTreeMap<String, PathBuf>,
    /// Every other crate in `Cargo.lock`, spelt as in a Rust path, and the standard library.
    external: BTreeSet<String>,
    /// Crate folder → (source path, text) of each of its `.rs` files.
    sources: BTreeMap<PathBuf, Vec<(PathBuf, String)>>,
    /// Every string literal's text in the sources, for names the code uses at run time.
    literals: BTreeSet<String>,
}

impl Index {
    pub(crate) fn of(root: &Path) -> Result<Self> {
        let mut crate_dirs: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
            .map_err(|e| format!("cannot list crates/: {e}"))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("Cargo.toml").is_file())
            .collect();
        crate_dirs.push(root.join("tests"));
        crate_dirs.push(root.join("xtask"));
        let mut index = Index {
            root: root.to_path_buf(),
            packages: BTreeSet::new(),
            libraries: BTreeMap::new(),
            external: ["std", "core", "alloc"].map(str::to_owned).into(),
            sources: BTreeMap::new(),
            literals: BTreeSet::new(),
        };
        for dir in crate_dirs {
            let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))
                .map_err(|e| format!("cannot read {}/Cargo.toml: {e}", dir.display()))?;
            let Some(package) = toml_name(&manifest, "[package]") else {
                continue;
            };
            let library =
                toml_name(&manifest, "[lib]").unwrap_or_else(|| package.replace('-', "_"));
            index.packages.insert(package);
            index.libraries.insert(library, dir.clone());
            let mut files = Vec::new();
            rust_files(&dir, &mut files);
            let mut texts = Vec::new();
            for file in files {
                let text = std::fs::read_to_string(&file).unwrap_or_default();
                index.literals.extend(string_literals(&text));
                texts.push((file, text));
            }
            index.sources.insert(dir, texts);
        }
        let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
        for line in lock.lines() {
            if let Some(name) = line
                .strip_prefix("name = \"")
                .and_then(|n| n.strip_suffix('"'))
            {
                index.external.insert(name.replace('-', "_"));
            }
        }
        Ok(index)
    }

    /// The crate folders whose sources hold a module named `name` (as a file or inline).
    fn modules_named(&self, name: &str) -> Vec<Module> {
        let mut found = Vec::new();
        for (dir, files) in &self.sources {
            for (path, text) in files {
                let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
                let is_file_module = (stem == name && path.extension().is_some_and(|e| e == "rs"))
                    || (stem == "mod"
                        && path
                            .parent()
                            .and_then(|p| p.file_name())
                            .is_some_and(|p| p == name));
                if is_file_module || text.contains(&format!("mod {name} {{")) {
                    found.push(Module {
                        krate: dir.clone(),
                        file: path.clone(),
                    });
                }
            }
        }
        found
    }

    /// The submodule `name` of `module`, if there is one.
    fn submodule(&self, module: &Module, name: &str) -> Option<Module> {
        let stem = module.file.file_stem()?.to_str()?;
        let parent = module.file.parent()?;
        let dir = if matches!(stem, "mod" | "lib" | "main") {
            parent.to_path_buf()
        } else {
            parent.join(stem)
        };
        for candidate in [
            dir.join(format!("{name}.rs")),
            dir.join(name).join("mod.rs"),
        ] {
            if candidate.is_file() {
                return Some(Module {
                    krate: module.krate.clone(),
                    file: candidate,
                });
            }
        }
        let text = self.text(&module.krate, &module.file)?;
        text.contains(&format!("mod {name} {{"))
            .then(|| module.clone())
    }

    fn text(&self, krate: &Path, file: &Path) -> Option<&str> {
        self.sources
            .get(krate)?
            .iter()
            .find(|(path, _)| path == file)
            .map(|(_, text)| text.as_str())
    }

    /// Whether any source of the crate at `krate` (every crate when `None`) defines `name`.
    fn defined(&self, krate: Option<&Path>, name: &str) -> bool {
        self.sources
            .iter()
            .filter(|(dir, _)| krate.is_none_or(|k| k == dir.as_path()))
            .flat_map(|(_, files)| files)
            .any(|(_, text)| defines_item(text, name))
    }

    /// The crates that define `name` as an item.
    fn crates_defining(&self, name: &str) -> Vec<PathBuf> {
        self.sources
            .iter()
            .filter(|(_, files)| files.iter().any(|(_, text)| defines_item(text, name)))
            .map(|(dir, _)| dir.clone())
            .collect()
    }
}

#[derive(Clone)]
struct Module {
    krate: PathBuf,
    file: PathBuf,
}

/// The `name = "…"` of a TOML table.
fn toml_name(manifest: &str, table: &str) -> Option<String> {
    let start = manifest.find(table)? + table.len();
    let body = &manifest[start..];
    let body = body.find("\n[").map_or(body, |end| &body[..end]);
    body.lines().find_map(|line| {
        line.trim()
            .strip_prefix("name = \"")
            .and_then(|n| n.strip_suffix('"'))
            .map(str::to_owned)
    })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "target" && name != "fixtures" && name != "node_modules" {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The plain string literals of a source text (no escapes needed for names).
fn string_literals(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.len() < 80 && !s.contains('\n'))
        .map(str::to_owned)
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether `text` has `keyword name` with `name` a whole word.
fn defines(text: &str, keyword: &str, name: &str) -> bool {
    let needle = format!("{keyword} {name}");
    text.match_indices(&needle).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + needle.len()..].chars().next();
        before.is_none_or(|c| !is_ident_char(c)) && after.is_none_or(|c| !is_ident_char(c))
    })
}

/// Whether `text` defines `name`: as a function, type, trait, constant, static, module or
/// macro, or as an enum variant or struct field (a line that starts with it).
fn defines_item(text: &str, name: &str) -> bool {
    const KEYWORDS: [&str; 9] = [
        "fn",
        "struct",
        "enum",
        "trait",
        "type",
        "const",
        "static",
        "mod",
        "macro_rules!",
    ];
    if KEYWORDS.iter().any(|k| defines(text, k, name)) {
        return true;
    }
    text.lines().any(|line| {
        let line = line.trim_start();
        let line = line.strip_prefix("pub ").unwrap_or(line);
        let line = line.strip_prefix("pub(crate) ").unwrap_or(line);
        line.strip_prefix(name).is_some_and(|rest| {
            let rest = rest.trim_start();
            rest.is_empty()
                || rest.starts_with(['(', '{', ','])
                || (rest.starts_with(':') && !rest.starts_with("::"))
        })
    })
}

/// Checks one document; answers how many references it holds and what is wrong with them.
pub(crate) fn check(index: &Index, doc: &str, text: &str) -> (usize, Vec<String>) {
    let doc_dir = Path::new(doc)
        .parent()
        .unwrap_or(Path::new(""))
        .to_path_buf();
    let mut count = 0;
    let mut problems = Vec::new();
    let mut fenced = false;
    for (number, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let at = |what: String| format!("{doc}:{}: {what}", number + 1);
        for target in link_targets(line) {
            count += 1;
            if !path_exists(index, &doc_dir, &target) {
                problems.push(at(format!("links to `{target}`, which does not exist")));
            }
        }
        // `shiplog-…` is a crate where the line speaks of crates or the span passes `-p`; elsewhere
        // it may be a name the user picks (a secret's, say).
        let crates_line = line.contains("crate");
        for span in code_spans(line) {
            let crates = crates_line || span.contains("-p ");
            for word in span.split_whitespace() {
                let word = word
                    .trim_start_matches(|c: char| ",;\"'(".contains(c))
                    .trim_end_matches(|c: char| ",;.:\"')".contains(c));
                if let Some(problem) = check_word(index, &doc_dir, word, crates, &mut count) {
                    problems.push(at(problem));
                }
            }
        }
    }
    (count, problems)
}

/// The local targets of the Markdown links of a line (`[text](target)`), without anchors.
fn link_targets(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let Some(end) = rest.find(')') else {
            break;
        };
        let target = rest[..end].split('#').next().unwrap_or("").trim();
        if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
            found.push(target.to_owned());
        }
        rest = &rest[end..];
    }
    found
}

/// The inline code spans of a line.
fn code_spans(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

fn path_exists(index: &Index, doc_dir: &Path, target: &str) -> bool {
    let target = target.trim_end_matches('/');
    index.root.join(target).exists() || index.root.join(doc_dir).join(target).exists()
}

/// Checks one word of a code span; counts it when it is a reference.
fn check_word(
    index: &Index,
    doc_dir: &Path,
    word: &str,
    crates: bool,
    count: &mut usize,
) -> Option<String> {
    if word.is_empty() || word.contains(['*', '…', '<', '>', '{', '$', '=', '?']) {
        return None;
    }
    if is_repository_path(word) {
        *count += 1;
        let path = word.split(['#', ':']).next().unwrap_or(word);
        return (!path_exists(index, doc_dir, path))
            .then(|| format!("names the path `{path}`, which does not exist"));
    }
    if crates && is_crate_name(word) {
        *count += 1;
        return (!index.packages.contains(word) && !index.literals.contains(word))
            .then(|| format!("names the crate `{word}`, which is not a package of the workspace"));
    }
    let path = word.trim_end_matches("()").trim_end_matches('!');
    if is_rust_path(path) {
        *count += 1;
        return rust_path_problem(index, path);
    }
    None
}

fn is_repository_path(word: &str) -> bool {
    const TOP: [&str; 8] = [
        "crates/",
        "tests/",
        "docs/",
        "migrations/",
        "xtask/",
        ".github/",
        ".ci/",
        "examples/",
    ];
    !word.contains("://")
        && (TOP.iter().any(|top| word.starts_with(top))
            || (word.contains('/')
                && !word.starts_with('/')
                && [".rs", ".md", ".sql", ".toml"]
                    .iter()
                    .any(|ext| word.ends_with(ext))))
}

fn is_crate_name(word: &str) -> bool {
    word.strip_prefix("shiplog-").is_some_and(|rest| {
        !rest.is_empty()
            && rest.chars().all(|c| c.is_ascii_lowercase() || c == '-')
            && !rest.ends_with('-')
    })
}

fn is_rust_path(word: &str) -> bool {
    let segments: Vec<&str> = word.split("::").collect();
    segments.len() >= 2
        && segments.iter().all(|s| {
            !s.is_empty()
                && s.chars().all(is_ident_char)
                && !s.starts_with(|c: char| c.is_ascii_digit())
        })
}

/// The standard library's types a document may name by their bare name.
const STD_TYPES: [&str; 10] = [
    "Vec", "String", "Option", "Result", "Box", "Arc", "Rc", "HashMap", "BTreeMap", "Duration",
];

/// What is wrong with a Rust path, if anything.
fn rust_path_problem(index: &Index, path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split("::").collect();
    let first = segments[0];
    let missing = |what: &str| Some(format!("names `{path}`, but {what}"));
    // Where the path starts: a crate of ours, a module of ours, an item of ours, or not ours.
    let ours = index.libraries.contains_key(first) || !index.modules_named(first).is_empty();
    if !ours && (index.external.contains(first) || STD_TYPES.contains(&first)) {
        return None;
    }
    let (mut scopes, rest): (Vec<Module>, &[&str]) = if let Some(dir) = index.libraries.get(first) {
        let root_file = ["src/lib.rs", "src/main.rs", "support.rs"]
            .iter()
            .map(|f| dir.join(f))
            .find(|f| f.is_file())?;
        (
            vec![Module {
                krate: dir.clone(),
                file: root_file,
            }],
            &segments[1..],
        )
    } else {
        let modules = index.modules_named(first);
        if !modules.is_empty() {
            (modules, &segments[1..])
        } else if matches!(first, "crate" | "self" | "super" | "Self") {
            return None;
        } else {
            let crates = index.crates_defining(first);
            if crates.is_empty() {
                return missing(&format!("no crate of the workspace defines `{first}`"));
            }
            let ok = segments[1..]
                .iter()
                .all(|s| crates.iter().any(|k| index.defined(Some(k), s)));
            return if ok {
                None
            } else {
                missing("an item after its first segment is defined nowhere beside it")
            };
        }
    };
    let mut items = rest;
    while let Some((next, after)) = items.split_first() {
        let deeper: Vec<Module> = scopes
            .iter()
            .filter_map(|m| index.submodule(m, next))
            .collect();
        if deeper.is_empty() {
            break;
        }
        scopes = deeper;
        items = after;
    }
    for item in items {
        if !scopes
            .iter()
            .any(|m| index.defined(Some(m.krate.as_path()), item))
        {
            return missing(&format!("`{item}` is defined nowhere in that crate"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Index {
        Index::of(&crate::workspace_root()).unwrap()
    }

    #[test]
    fn true_references_pass() {
        let index = index();
        let doc = "Read `crates/store-diesel/src/conn.rs`, [the DORA rules](dora.md#incidents), \
                   the crate `shiplog-store`, `shiplog_app::ingest::decide`, `App::claim_due`, \
                   `routes::routes!`, `hmac::Mac::verify_slice` and `migrations/postgres/`.";
        let (count, problems) = check(&index, "docs/ARCHITECTURE.md", doc);
        assert_eq!(problems, Vec::<String>::new());
        assert_eq!(count, 8);
    }

    #[test]
    fn a_planted_bad_reference_of_each_kind_is_found() {
        let index = index();
        for (planted, expected) in [
            ("`crates/store-diesel/src/nope.rs`", "the path"),
            ("[gone](nowhere.md)", "links to `nowhere.md`"),
            ("the crate `shiplog-nothing`", "the crate `shiplog-nothing`"),
            (
                "`shiplog_app::ingest::undecided`",
                "`undecided` is defined nowhere",
            ),
            ("`conn::NoSuchType`", "`NoSuchType` is defined nowhere"),
            ("`nosuchmodule::Thing`", "no crate of the workspace defines"),
            ("`App::no_such_use_case`", "defined nowhere beside it"),
        ] {
            let doc = format!("Line one.\nSee {planted} here.\n");
            let (_, problems) = check(&index, "docs/ARCHITECTURE.md", &doc);
            assert_eq!(problems.len(), 1, "{planted}: {problems:?}");
            assert!(
                problems[0].starts_with("docs/ARCHITECTURE.md:2: ")
                    && problems[0].contains(expected),
                "{planted}: {problems:?}"
            );
        }
    }

    #[test]
    fn fenced_examples_are_not_read() {
        let (count, problems) = check(&index(), "README.md", "```sh\ncat `crates/nope.rs`\n```\n");
        assert_eq!((count, problems), (0, Vec::new()));
    }
}
