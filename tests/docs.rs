//! The design note `docs/runtime-free-design.md` against the code: every
//! source path it names exists, and every function it lists is defined in
//! `src/` (so a rename or a move shows up as a failing test, not a stale doc).

use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn doc() -> String {
    std::fs::read_to_string(Path::new(ROOT).join("docs/runtime-free-design.md"))
        .expect("docs/runtime-free-design.md")
}

/// Every `src/...` path in the note, and every file of its source tree
/// (`  name.rs` / `  dir/` lines under a `src/` directory line).
fn named_paths(doc: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for word in doc.split(|c: char| c.is_whitespace() || "`(),".contains(c)) {
        if word.starts_with("src/") {
            paths.push(word.trim_end_matches(['.', ':']).to_owned());
        }
    }
    // The tree: a line "src/dir/ ..." opens a directory; "  name ..." lines below
    // are its entries, "    name" lines the entries of the last "  sub/" one.
    let tree = doc.split("```").nth(1).expect("the source tree block");
    let (mut dir, mut sub) = (String::new(), String::new());
    for line in tree.lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        if line.starts_with("src/") {
            dir = if name.ends_with('/') {
                name.to_owned()
            } else {
                String::new()
            };
        } else if line.starts_with("    ") && !sub.is_empty() {
            paths.push(format!("{dir}{sub}{name}"));
        } else if line.starts_with("  ") && !dir.is_empty() {
            paths.push(format!("{dir}{name}"));
            sub = if name.ends_with('/') {
                name.to_owned()
            } else {
                String::new()
            };
        }
    }
    paths
}

#[test]
fn every_path_in_the_design_note_exists() {
    let paths = named_paths(&doc());
    assert!(paths.len() > 20, "{paths:?}");
    let missing: Vec<&String> = paths
        .iter()
        .filter(|p| !Path::new(ROOT).join(p).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "named in the note but not in the tree: {missing:?}"
    );
}

/// All `.rs` files below `dir`, concatenated.
fn sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).expect("read source"));
        }
    }
}

#[test]
fn every_function_in_the_design_note_is_defined() {
    let mut src = String::new();
    sources(&Path::new(ROOT).join("src"), &mut src);
    let doc = doc();
    let mut names = Vec::new();
    for part in doc.split("fn ").skip(1) {
        let name: String = part
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            names.push(name);
        }
    }
    assert!(names.len() > 20, "{names:?}");
    let undefined: Vec<&String> = names
        .iter()
        .filter(|n| !src.contains(&format!("fn {n}(")) && !src.contains(&format!("fn {n}<")))
        .collect();
    assert!(
        undefined.is_empty(),
        "listed in the note but defined nowhere in src/: {undefined:?}"
    );
}
