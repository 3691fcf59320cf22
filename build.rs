//! Generates Rust code from `proto/` without a system `protoc`.
//!
//! `protox` compiles the `.proto` files in pure Rust, so a bare container (as
//! `cross` uses) needs nothing but cargo. The descriptor set is fed to
//! `tonic-prost-build` when a tonic build (server or client) is selected, and
//! to plain `prost-build` otherwise: the runtime-free server needs only the
//! message types. The encoded descriptor set is also written to
//! `$OUT_DIR/descriptor.bin` for server reflection.

use std::{env, error::Error, fs, path::PathBuf};

/// Every schema the crate always serves, relative to `proto/`.
const PROTOS: &[&str] = &[
    "echo.proto",
    "grpc/health/v1/health.proto",
    "grpc/reflection/v1/reflection.proto",
    "grpc/reflection/v1alpha/reflection.proto",
];

/// Schemas served only with a cargo feature: (feature, schema).
const OPTIONAL_PROTOS: &[(&str, &str)] = &[
    ("TELEMETRY", "telemetry.proto"),
    ("INTEROP", "src/proto/grpc/testing/test.proto"),
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    let mut protos: Vec<&str> = PROTOS.to_vec();
    for (feature, proto) in OPTIONAL_PROTOS {
        if env::var_os(format!("CARGO_FEATURE_{feature}")).is_some() {
            protos.push(proto);
        }
    }
    for proto in &protos {
        println!("cargo:rerun-if-changed=proto/{proto}");
    }
    let fds = protox::compile(&protos, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    // Reflection serves the schemas, not their comments and source positions:
    // dropping `source_code_info` keeps ~3.6 KB of it out of the binary.
    let mut served = fds.clone();
    for file in &mut served.file {
        file.source_code_info = None;
    }
    fs::write(
        out.join("descriptor.bin"),
        prost::Message::encode_to_vec(&served),
    )?;

    let server = env::var_os("CARGO_FEATURE_TOKIO_SERVER").is_some();
    let client = env::var_os("CARGO_FEATURE_CLIENT").is_some();
    if server || client {
        tonic_codegen(fds, server, client)?;
    } else {
        prost_build::Config::new().compile_fds(fds)?;
    }
    Ok(())
}

#[cfg(any(feature = "tokio-server", feature = "client"))]
fn tonic_codegen(
    fds: prost_types::FileDescriptorSet,
    server: bool,
    client: bool,
) -> Result<(), Box<dyn Error>> {
    tonic_prost_build::configure()
        .build_server(server)
        .build_client(client)
        .build_transport(false)
        .compile_fds(fds)?;
    Ok(())
}

#[cfg(not(any(feature = "tokio-server", feature = "client")))]
fn tonic_codegen(
    _: prost_types::FileDescriptorSet,
    _: bool,
    _: bool,
) -> Result<(), Box<dyn Error>> {
    Err("tonic code generation needs the tonic-prost-build build-dependency".into())
}
