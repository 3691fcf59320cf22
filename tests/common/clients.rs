//! The third-party clients installed by `tests/interop/setup.sh`: Python
//! scripts run in the project's venv (grpcio, grpcio-reflection, h2) and
//! Node scripts on `@grpc/grpc-js`. A missing install fails the test with
//! the command that fixes it: these clients are never skipped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{run, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// How long one client process may run.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The venv's Python, after checking the clients and stubs are installed.
fn venv_python() -> PathBuf {
    let python = Path::new(ROOT).join("target/interop/venv/bin/python");
    let stubs = Path::new(ROOT).join("target/interop/gen/echo_pb2_grpc.py");
    assert!(
        python.exists() && stubs.exists(),
        "the Python interop clients are not installed ({} / {} missing): \
         run scripts/test, which sets them up (or tests/interop/setup.sh)",
        python.display(),
        stubs.display()
    );
    python
}

/// Runs `tests/interop/python/SCRIPT ARGS` in the venv, stubs on `PYTHONPATH`.
pub fn python(script: &str, args: &[&str]) -> Output {
    let python = venv_python();
    let script = Path::new(ROOT).join("tests/interop/python").join(script);
    let gen = Path::new(ROOT).join("target/interop/gen");
    let mut all = vec![script.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    run(
        python.to_str().expect("utf-8 path"),
        &all,
        &[
            ("PYTHONPATH", gen.to_str().expect("utf-8 path")),
            ("PYTHONDONTWRITEBYTECODE", "1"),
        ],
        CLIENT_TIMEOUT,
    )
}

/// Runs `node tests/interop/node/SCRIPT ARGS` after checking grpc-js is installed.
pub fn node(script: &str, args: &[&str]) -> Output {
    let dir = Path::new(ROOT).join("tests/interop/node");
    assert!(
        dir.join("node_modules/@grpc/grpc-js").exists(),
        "the Node interop client is not installed (tests/interop/node/node_modules missing): \
         run scripts/test, which sets it up (or tests/interop/setup.sh)"
    );
    let script = dir.join(script);
    let mut all = vec![script.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    run("node", &all, &[], CLIENT_TIMEOUT)
}
