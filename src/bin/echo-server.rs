//! `echo-server`: parses flags and environment, then runs this build's server
//! flavour (tokio or runtime-free). Exit codes: 0 after a clean shutdown,
//! 1 on a configuration or bind error (printed as one line on stderr).

use std::process::ExitCode;

use lean_grpc::config::{self, Command, Config};

fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help) => {
            print!("{}", config::help());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("{}", config::version());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    lean_grpc::log::set_level(config.log);
    match lean_grpc::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Printed whatever the log level (even `--log off`): the one line
            // that says why the server did not start, in the log's format.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
