//! `echo-client`: calls echo.Echo/Reply (and health) from a workstation.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    match args.next() {
        Some(cmd) if cmd == "bench" => lean_grpc::client::bench::main(args),
        _ => {
            eprintln!("usage: echo-client bench [OPTIONS] (see echo-client bench --help)");
            ExitCode::FAILURE
        }
    }
}
