//! `echo-client`: calls echo.Echo/Reply (or health) on an echo-server from a
//! workstation and prints the answer. Failures are one `error: CODE: reason`
//! line on stderr; exit codes are listed in `--help`.

use std::process::ExitCode;

use lean_grpc::client::cli::{self, Command, EXIT_FAILED, EXIT_NOT_SERVING, EXIT_USAGE};
use lean_grpc::client::{self, ClientError};
use lean_grpc::proto::health::health_check_response::ServingStatus;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1).peekable();
    if args.peek().is_some_and(|a| a == "bench") {
        return lean_grpc::client::bench::main(args.skip(1));
    }
    if args
        .peek()
        .is_some_and(|a| client::stream::is_subcommand(a))
    {
        return client::stream::main(args);
    }
    let command = match cli::parse(args) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("error: {e} (see --help)");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let command = match command {
        Command::Help => {
            print!("{}", cli::help());
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("echo-client {}", lean_grpc::VERSION);
            return ExitCode::SUCCESS;
        }
        call => call,
    };
    let runtime = match client::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match command {
        Command::Help | Command::Version => {}
        Command::Echo { target, message } => {
            let reply = runtime.block_on(async {
                let channel = client::connect_target(&target).await?;
                client::echo(channel, &message, target.timeout).await
            });
            match reply {
                Ok(text) => println!("{text}"),
                Err(e) => return failed(&e),
            }
        }
        Command::Health { target, service } => {
            let status = runtime.block_on(async {
                let channel = client::connect_target(&target).await?;
                client::health(channel, &service, target.timeout).await
            });
            match status {
                Ok(status) => {
                    println!("{}", status.as_str_name());
                    if status != ServingStatus::Serving {
                        return ExitCode::from(EXIT_NOT_SERVING);
                    }
                }
                Err(e) => return failed(&e),
            }
        }
    }
    ExitCode::SUCCESS
}

fn failed(e: &ClientError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_FAILED)
}
