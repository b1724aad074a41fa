//! The tidy test: rules of the workspace that no compiler checks.
//!
//! Each rule is one `#[test]`, a plain text scan of the files (as in rust-analyzer's
//! `xtask/src/tidy.rs`): quick, and wrong only in ways a reader sees at once. Every failure names
//! the file and line and says how to fix it. The scans read only what the rules need: `Cargo.toml`
//! files through `toml`, Rust sources line by line, and ARCHITECTURE.md.

use groundwork_core::ErrorCode;
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The workspace crates each crate may list under `[dependencies]`, by directory name under
/// `crates/` (`cli` is the binary, package `groundwork`). Dev-dependencies are free. Keep it in
/// step with the code map in ARCHITECTURE.md.
const LAYERS: &[(&str, &[&str])] = &[
    ("core", &[]),
    ("embed", &[]),
    ("govern", &["core"]),
    ("guard", &["core"]),
    ("llm", &["core"]),
    ("index", &["core"]),
    ("objects", &["core"]),
    ("sql", &["core", "objects"]),
    ("store", &["core", "govern"]),
    ("search", &["core", "govern", "store", "index"]),
    ("ingest", &["core", "store", "embed", "search", "objects"]),
    (
        "service",
        &[
            "core", "store", "govern", "embed", "index", "ingest", "objects", "search", "sql", "llm", "guard",
        ],
    ),
    ("server", &["core", "guard", "service"]),
    ("cli", &["core", "guard", "service", "server"]),
    ("tidy", &[]),
];

/// A source file over this many lines must say in its module doc why it is one unit.
const LONG_FILE_LINES: usize = 700;

/// Marks a line whose string literal only looks like an error code.
const NOT_AN_ERROR_CODE: &str = "// tidy: not an error code";

const ERROR_TABLE_START: &str = "<!-- error-table:start -->";
const ERROR_TABLE_END: &str = "<!-- error-table:end -->";

/// 1. Every Rust file starts with a `//!` comment saying what it is for.
#[test]
fn every_file_starts_with_a_module_doc() {
    let mut failures = Vec::new();
    for krate in crates() {
        for folder in ["src", "tests", "examples"] {
            for file in rust_files(&krate.dir.join(folder)) {
                let text = read(&file);
                let first = text.lines().enumerate().find(|(_, l)| !l.trim().is_empty());
                if let Some((_, line)) = first
                    && line.starts_with("//!")
                {
                    continue;
                }
                let line = first.map_or(1, |(i, _)| i + 1);
                failures.push(format!(
                    "{}:{line}: the file does not start with a `//!` comment. Add one at the top \
                     that says what the module is for (and its invariants, if it keeps any).",
                    rel(&file)
                ));
            }
        }
    }
    report("module docs", failures);
}

/// 2. Crates depend only downwards, along `LAYERS`.
#[test]
fn crates_depend_only_downwards() {
    let all = crates();
    let layers: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut failures = Vec::new();
    for krate in &all {
        let manifest = rel(&krate.dir.join("Cargo.toml"));
        let Some(allowed) = layers.get(krate.name.as_str()) else {
            failures.push(format!(
                "{manifest}:1: `crates/{}` is a new crate with no row in the layering table. Add \
                 its row to LAYERS in crates/tidy/tests/tidy.rs (the workspace crates it may \
                 depend on), and its row to the code map in ARCHITECTURE.md.",
                krate.name
            ));
            continue;
        };
        for (dep, line) in internal_deps(krate, &all) {
            let name = krate.name.as_str();
            let why = if dep == "cli" {
                "`groundwork` (crates/cli) is the binary, and nothing depends on it. Move what you \
                 need out of crates/cli into the library crate where it belongs."
                    .to_string()
            } else if dep == "server" && name != "cli" {
                "only the binary (crates/cli) may depend on `groundwork-server`. Move what you need \
                 from the server down into `service` or `core`."
                    .to_string()
            } else if dep == "service" && name != "server" && name != "cli" {
                "`groundwork-service` is the façade that only the faces (server, cli) call; a crate \
                 below it must not call back up. Pass what you need down as a parameter or a \
                 trait, or move it below the service."
                    .to_string()
            } else if name == "core" {
                "`groundwork-core` is the bottom layer, plain types every crate shares, and \
                 depends on no workspace crate. Move the type you need into core, or the code that \
                 needs it out of core."
                    .to_string()
            } else if !allowed.contains(&dep.as_str()) {
                format!(
                    "the layering table does not allow it. Depend downwards instead (move the code, \
                     or the type it needs, to a lower crate); if the layering really changes, add \
                     `{dep}` to the `{name}` row of LAYERS in crates/tidy/tests/tidy.rs and to its \
                     code-map row in ARCHITECTURE.md."
                )
            } else {
                continue;
            };
            failures.push(format!("{manifest}:{line}: `{name}` depends on `{dep}`: {why}"));
        }
    }
    report("layering", failures);
}

/// 3. Error codes are written once, in `groundwork_core::ErrorCode`, never as string literals.
///
/// Reads `crates/*/src` but for the table's own file, up to each file's first `#[cfg(test)]`,
/// skipping comment lines and lines marked `// tidy: not an error code`.
#[test]
fn error_codes_live_in_one_table() {
    let names: Vec<String> = ErrorCode::ALL
        .iter()
        .map(|code| regex::escape(code.as_str()))
        .collect();
    let literal = Regex::new(&format!(r#""({})""#, names.join("|"))).unwrap();
    let table = root().join("crates/core/src/error.rs");
    let mut failures = Vec::new();
    for krate in crates() {
        for file in rust_files(&krate.dir.join("src")) {
            if file == table {
                continue;
            }
            let text = read(&file);
            for (number, line) in non_test_lines(&text) {
                if line.trim_start().starts_with("//") || line.contains(NOT_AN_ERROR_CODE) {
                    continue;
                }
                for found in literal.captures_iter(line) {
                    let code = ErrorCode::from_name(&found[1]).unwrap();
                    failures.push(format!(
                        "{}:{number}: the error code `{code}` is written as a string literal. \
                         Error codes live in one table, groundwork_core::ErrorCode: write \
                         `ErrorCode::{code:?}.as_str()` (or carry the `ErrorCode` itself). If the \
                         string is not an error code (a JSON field, a config key, a word), end the \
                         line with `{NOT_AN_ERROR_CODE}`.",
                        rel(&file)
                    ));
                }
            }
        }
    }
    report("error codes", failures);
}

/// 4. A long source file says, in its module doc, why it is one unit.
#[test]
fn long_files_say_why() {
    let mut failures = Vec::new();
    for krate in crates() {
        for file in rust_files(&krate.dir.join("src")) {
            let text = read(&file);
            let lines = text.lines().count();
            if lines <= LONG_FILE_LINES {
                continue;
            }
            let says_why = text
                .lines()
                .skip_while(|l| l.trim().is_empty())
                .take_while(|l| l.starts_with("//!"))
                .filter_map(|l| l.strip_prefix("//! One unit:"))
                .any(|why| !why.trim().is_empty());
            if !says_why {
                failures.push(format!(
                    "{}:1: {lines} lines, over {LONG_FILE_LINES}. Split it by area; or, if it is \
                     one unit (one data structure and its operations, a word list that is data), \
                     say why in its module doc with a line `//! One unit: <the reason>`.",
                    rel(&file)
                ));
            }
        }
    }
    report("long files", failures);
}

/// 5. Inside a crate, module files do not import each other in a circle.
///
/// A file depends on the module files its `crate::…` and `super::…` paths name (the longest
/// module path that exists; `use crate::{a, b::c}` groups included). Test code (everything after
/// the first `#[cfg(test)]`) and comment lines are not read.
#[test]
fn no_import_cycles_inside_a_crate() {
    let mut failures = Vec::new();
    for krate in crates() {
        let src = krate.dir.join("src");
        let modules: BTreeMap<String, PathBuf> = rust_files(&src)
            .into_iter()
            .filter_map(|file| Some((module_of(&src, &file)?, file)))
            .collect();
        // module -> module it uses -> (line, the path as written)
        let mut uses: BTreeMap<&str, BTreeMap<&str, (usize, String)>> = BTreeMap::new();
        for (module, file) in &modules {
            let edges = uses.entry(module).or_default();
            for (line, anchor, path) in paths_in(&read(file)) {
                let Some(target) = resolve(module, &anchor, &path, &modules) else {
                    continue;
                };
                if target != module.as_str() {
                    let written = format!("{anchor}::{}", path.join("::"));
                    edges.entry(target).or_insert((line, written));
                }
            }
        }
        for (cycle, knot) in cycles(&uses) {
            let mut steps = String::new();
            for (from, to) in cycle.iter().zip(cycle.iter().cycle().skip(1)) {
                let (line, written) = &uses[from][to];
                steps.push_str(&format!(
                    "\n    {}:{line} uses `{written}` ({})",
                    rel(&modules[*from]),
                    rel(&modules[*to])
                ));
            }
            let others: Vec<String> = knot
                .iter()
                .filter(|m| !cycle.contains(m))
                .map(|m| rel(&modules[*m]))
                .collect();
            if !others.is_empty() {
                steps.push_str(&format!(
                    "\n  and, caught in the same circle: {}",
                    others.join(", ")
                ));
            }
            failures.push(format!(
                "{}: these modules import each other in a circle:{steps}\nBreak the circle: move \
                 what they share into a module below both, or pass it in as a parameter.",
                rel(&src)
            ));
        }
    }
    report("import cycles", failures);
}

/// 6a. ARCHITECTURE.md's error table is `ErrorCode::markdown_table()`.
#[test]
fn architecture_error_table_is_the_code_table() {
    let path = root().join("ARCHITECTURE.md");
    let doc = read(&path);
    let expected = ErrorCode::markdown_table();
    let lines: Vec<&str> = doc.lines().collect();
    let start = lines.iter().position(|l| l.trim() == ERROR_TABLE_START);
    let end = lines.iter().position(|l| l.trim() == ERROR_TABLE_END);
    let (Some(start), Some(end)) = (start, end) else {
        panic!(
            "ARCHITECTURE.md:1: the lines `{ERROR_TABLE_START}` and `{ERROR_TABLE_END}` are \
             missing. Put them around the error table, with this in between:\n\n{expected}"
        );
    };
    assert!(
        start < end,
        "ARCHITECTURE.md:{}: `{ERROR_TABLE_END}` comes before `{ERROR_TABLE_START}`",
        end + 1
    );
    let written = &lines[start + 1..end];
    let first_blank = written.iter().take_while(|l| l.trim().is_empty()).count();
    let mismatch = expected
        .lines()
        .map(Some)
        .chain([None])
        .zip(written[first_blank..].iter().map(|l| Some(*l)).chain([None]))
        .position(|(want, have)| want != have.filter(|l| !l.trim().is_empty()));
    if let Some(row) = mismatch {
        panic!(
            "ARCHITECTURE.md:{}: the error table differs from groundwork_core::ErrorCode's \
             (crates/core/src/error.rs), which is the one table. Replace the lines between \
             `{ERROR_TABLE_START}` and `{ERROR_TABLE_END}` with:\n\n{expected}",
            start + 2 + first_blank + row
        );
    }
}

/// 6b. ARCHITECTURE.md's code map has a row for every crate, naming its internal dependencies.
#[test]
fn architecture_code_map_names_every_crate_and_its_dependencies() {
    let doc = read(&root().join("ARCHITECTURE.md"));
    let all = crates();
    let mut failures = Vec::new();
    for krate in &all {
        let row_start = format!("| `crates/{}`", krate.name);
        let Some((index, row)) = doc.lines().enumerate().find(|(_, l)| l.starts_with(&row_start)) else {
            failures.push(format!(
                "ARCHITECTURE.md:1: the code map has no row for crates/{0}. Add one to the table \
                 under \"## Code map\": {row_start} (`{1}`) | what it owns | its workspace \
                 dependencies |",
                krate.name, krate.package
            ));
            continue;
        };
        let last = row
            .trim()
            .trim_end_matches('|')
            .rsplit('|')
            .next()
            .unwrap()
            .trim();
        let written: BTreeSet<&str> = match last {
            "—" => BTreeSet::new(),
            names => names.split(',').map(|n| n.trim().trim_matches('`')).collect(),
        };
        let deps: Vec<String> = internal_deps(krate, &all).into_iter().map(|(d, _)| d).collect();
        if written != deps.iter().map(String::as_str).collect() {
            let want = if deps.is_empty() {
                "—".to_string()
            } else {
                deps.join(", ")
            };
            failures.push(format!(
                "ARCHITECTURE.md:{}: the code-map row of crates/{} says it depends on `{last}`, \
                 but the [dependencies] of crates/{}/Cargo.toml name `{want}`. Write `{want}` in \
                 the row's last column (short names, `—` for none).",
                index + 1,
                krate.name,
                krate.name
            ));
        }
    }
    let names: BTreeSet<&str> = all.iter().map(|k| k.name.as_str()).collect();
    for (index, line) in doc.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("| `crates/")
            && let Some(name) = rest.split('`').next()
            && !names.contains(name)
        {
            failures.push(format!(
                "ARCHITECTURE.md:{}: the code map has a row for crates/{name}, which does not \
                 exist. Remove the row.",
                index + 1
            ));
        }
    }
    report("code map", failures);
}

// ---- the workspace ----

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

/// `path` relative to the workspace root, as messages print it.
fn rel(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", rel(path)))
}

/// A crate of the workspace, `crates/NAME`.
struct Crate {
    name: String,
    dir: PathBuf,
    package: String,
    manifest: toml::Table,
    manifest_text: String,
}

/// Every folder under `crates/` with a `Cargo.toml`, by name.
fn crates() -> Vec<Crate> {
    let mut all: Vec<Crate> = fs::read_dir(root().join("crates"))
        .expect("crates/")
        .map(|entry| entry.expect("crates/").path())
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .map(|dir| {
            let manifest_text = read(&dir.join("Cargo.toml"));
            let manifest: toml::Table = manifest_text
                .parse()
                .unwrap_or_else(|e| panic!("{}: {e}", rel(&dir.join("Cargo.toml"))));
            let package = manifest["package"]["name"].as_str().unwrap().to_string();
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            Crate {
                name,
                dir,
                package,
                manifest,
                manifest_text,
            }
        })
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}

/// The workspace crates `krate` lists under `[dependencies]`, by directory name, with the line
/// of `Cargo.toml` that names each, in file order.
fn internal_deps(krate: &Crate, all: &[Crate]) -> Vec<(String, usize)> {
    let Some(deps) = krate.manifest.get("dependencies").and_then(|d| d.as_table()) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for (key, value) in deps {
        let package = value.get("package").and_then(|p| p.as_str()).unwrap_or(key);
        if let Some(dep) = all.iter().find(|c| c.package == package) {
            let line = krate
                .manifest_text
                .lines()
                .position(|l| {
                    l.trim_start()
                        .strip_prefix(key.as_str())
                        .is_some_and(|rest| rest.starts_with([' ', '.', '=']))
                })
                .map_or(1, |i| i + 1);
            found.push((dep.name.clone(), line));
        }
    }
    found.sort_by_key(|(_, line)| *line);
    found
}

/// The `.rs` files under `dir`, sorted; none if it does not exist.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return files;
    };
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The lines of a source file before its first `#[cfg(test)]`, numbered from 1.
fn non_test_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .take_while(|l| !l.trim_start().starts_with("#[cfg(test)]"))
        .enumerate()
        .map(|(i, l)| (i + 1, l))
}

/// Prints every failure and fails the test.
fn report(rule: &str, failures: Vec<String>) {
    if !failures.is_empty() {
        panic!(
            "tidy ({rule}): {} problem(s)\n\n{}\n",
            failures.len(),
            failures.join("\n\n")
        );
    }
}

// ---- modules and their imports ----

/// The module path of a file under `src/`: `a.rs` and `a/mod.rs` are `a`, `a/b.rs` is `a::b`;
/// `None` for the crate root.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    match parts.as_slice() {
        [] => None,
        [root] if root == "lib" || root == "main" => None,
        _ => Some(parts.join("::")),
    }
}

/// Every `crate::…` and `super::…` path in the non-test, non-comment lines of `text`: (line,
/// anchor — `crate`, `super` or `super::super`…, the segments after it). A group expands to its
/// paths: `crate::{a, b::{c, D}}` gives `a`, `b::c` and `b::D`.
fn paths_in(text: &str) -> Vec<(usize, String, Vec<String>)> {
    let code: String = non_test_lines(text)
        .map(|(_, l)| if l.trim_start().starts_with("//") { "" } else { l })
        .flat_map(|l| [l, "\n"])
        .collect();
    let start = Regex::new(r"\b(?:crate|super(?:::super)*)::").unwrap();
    let mut found = Vec::new();
    for anchor in start.find_iter(&code) {
        let line = code[..anchor.start()].matches('\n').count() + 1;
        let mut paths = Vec::new();
        use_tree(&code[anchor.end()..], &mut Vec::new(), &mut paths);
        let anchor = anchor.as_str().trim_end_matches("::").to_string();
        found.extend(paths.into_iter().map(|p| (line, anchor.clone(), p)));
    }
    found
}

/// Reads one use tree from the start of `s` (a path, or a `{…}` group of trees), pushing the
/// paths it names, each after `prefix`, to `out`. Returns what follows the tree.
fn use_tree<'a>(mut s: &'a str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) -> &'a str {
    let depth = prefix.len();
    loop {
        s = s.trim_start();
        if let Some(group) = s.strip_prefix('{') {
            s = group;
            loop {
                s = use_tree(s, prefix, out).trim_start();
                match s.strip_prefix(',') {
                    Some(rest) => s = rest,
                    None => break,
                }
            }
            prefix.truncate(depth);
            return s.strip_prefix('}').unwrap_or(s);
        }
        let len = s
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        if len == 0 {
            break; // `*`, `<`, the end of a group
        }
        prefix.push(s[..len].to_string());
        s = &s[len..];
        match s.strip_prefix("::") {
            Some(rest) => s = rest,
            None => break,
        }
    }
    if prefix.last().is_some_and(|p| p == "self") {
        prefix.pop(); // `a::{self, B}` names `a`
    }
    if prefix.len() > depth {
        out.push(prefix.clone());
    }
    prefix.truncate(depth);
    // `a::b as c`: skip the new name.
    match s.trim_start().strip_prefix("as ") {
        Some(rest) => rest
            .trim_start()
            .trim_start_matches(|c: char| c.is_alphanumeric() || c == '_'),
        None => s,
    }
}

/// The module file a path written in `module` names: the longest module path that is a prefix
/// of it, seen from the crate root (`crate`) or from the parent of `module` (each `super`).
fn resolve<'m>(
    module: &str,
    anchor: &str,
    path: &[String],
    modules: &'m BTreeMap<String, PathBuf>,
) -> Option<&'m str> {
    let mut full: Vec<&str> = Vec::new();
    if anchor != "crate" {
        let ups = anchor.split("::").count();
        let here: Vec<&str> = module.split("::").collect();
        full.extend(here.get(..here.len().checked_sub(ups)?)?);
    }
    full.extend(path.iter().map(String::as_str));
    (1..=full.len())
        .rev()
        .find_map(|n| modules.get_key_value(&full[..n].join("::")))
        .map(|(name, _)| name.as_str())
}

/// A knot of modules that reach each other: one cycle through it (the modules in order), and
/// all its modules.
type Knot<'m> = (Vec<&'m str>, BTreeSet<&'m str>);

/// Every knot of the import graph `uses`.
fn cycles<'m>(uses: &BTreeMap<&'m str, BTreeMap<&'m str, (usize, String)>>) -> Vec<Knot<'m>> {
    let reach = |from: &'m str| -> BTreeSet<&'m str> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from];
        while let Some(m) = todo.pop() {
            for next in uses.get(m).into_iter().flat_map(|e| e.keys()) {
                if seen.insert(*next) {
                    todo.push(next);
                }
            }
        }
        seen
    };
    let mut done = BTreeSet::new();
    let mut found = Vec::new();
    for &start in uses.keys() {
        if done.contains(start) || !reach(start).contains(start) {
            continue;
        }
        let knot: BTreeSet<&str> = reach(start)
            .into_iter()
            .filter(|m| reach(m).contains(start))
            .collect();
        done.extend(knot.iter().copied());
        // The shortest way from `start` back to itself, inside the knot.
        let mut back: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        'search: while let Some(m) = queue.pop_front() {
            for &next in uses[m].keys().filter(|n| knot.contains(*n)) {
                if next == start {
                    let mut cycle = vec![m];
                    while let Some(&prev) = back.get(cycle.last().unwrap()) {
                        cycle.push(prev);
                    }
                    cycle.reverse();
                    found.push((cycle, knot.clone()));
                    break 'search;
                }
                if !back.contains_key(next) {
                    back.insert(next, m);
                    queue.push_back(next);
                }
            }
        }
    }
    found
}
