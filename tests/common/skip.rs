//! Skipping a test that cannot run here, loudly: under CI it fails instead,
//! and `scripts/test` counts every skip (never as a pass).
//!
//! A skipped test prints `SKIPPED <test>: <reason>` and appends the same line to
//! the file named by `LEAN_GRPC_SKIP_LOG` (set by `scripts/test`), which reports
//! the step as SKIPPED with the reason and counts it in its last line.

use std::io::Write;

/// Whether this is a CI run (`CI` set to anything but empty, `0` or `false`).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// Records that `test` did not run because of `reason`; panics under CI, where
/// every check must run. The caller returns right after.
pub fn skip(test: &str, reason: &str) {
    assert!(!under_ci(), "{test} cannot run under CI: {reason}");
    let line = format!("SKIPPED {test}: {reason}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("LEAN_GRPC_SKIP_LOG") {
        let logged = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{line}"));
        // Losing the record would turn a skip into a silent pass.
        if let Err(e) = logged {
            panic!("{test}: cannot record the skip in {path:?}: {e}");
        }
    }
}
