//! `echo-client` command line: `[echo] [MESSAGE...]`, `health`, and the
//! options they share. Parsing is separate from running so it can be tested
//! without a server.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::parse_duration;

/// Where to send a call and how long it may take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Server URI, always with a scheme (`http://127.0.0.1:50051`).
    pub addr: String,
    /// Bound on connecting, and separately on the call (sent as `grpc-timeout`).
    pub timeout: Duration,
    /// TLS files; all `None` for a plaintext (`http://`) server.
    pub tls: super::TlsFiles,
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Call echo.Echo/Reply and print the reply text.
    Echo {
        /// Server and deadline.
        target: Target,
        /// The message to send.
        message: String,
    },
    /// Call grpc.health.v1.Health/Check and print the serving status.
    Health {
        /// Server and deadline.
        target: Target,
        /// Service to ask about; "" is the whole server.
        service: String,
    },
    /// Print [`help`] and exit 0.
    Help,
    /// Print the version and exit 0.
    Version,
}

/// Server address used when `--addr` is not given.
pub use super::DEFAULT_ADDR;
/// Deadline used when `--timeout` is not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Message sent when none is given.
pub const DEFAULT_MESSAGE: &str = "Hello World!";

/// Exit code for a bad command line.
pub const EXIT_USAGE: u8 = 1;
/// Exit code when the call failed: no connection, timeout, or a non-OK status.
pub const EXIT_FAILED: u8 = 2;
/// Exit code of `health` when the answer is anything but SERVING.
pub const EXIT_NOT_SERVING: u8 = 3;

/// The `--help` text.
pub fn help() -> String {
    format!(
        "echo-client {version}: calls a lean-grpc echo-server\n\n\
         Usage:\n\
         \x20 echo-client [OPTIONS] [echo] [MESSAGE...]   print the reply to MESSAGE (default \"{DEFAULT_MESSAGE}\")\n\
         \x20 echo-client [OPTIONS] health [--service NAME]  print the serving status\n\
         {streaming}\n\
         \x20 echo-client bench [OPTIONS]                     load test: calls, errors, latency\n\
         \x20                                                 (echo-client bench --help)\n\n\
         Options:\n\
         \x20 --addr ADDR        server, http://HOST:PORT, https://HOST:PORT or HOST:PORT\n\
         \x20                    [default: {DEFAULT_ADDR}]\n\
         \x20 --timeout DURATION bound on connecting and on the call, e.g. 500ms, 5s [default: 5s]\n\
         \x20 --service NAME     (health) service to ask about; empty = the whole server\n\
         \x20 --ca FILE          TLS: trust this PEM CA for the server's certificate; a HOST:PORT\n\
         \x20                    address then means https:// (build with --features tls)\n\
         \x20 --cert FILE        TLS: client certificate chain (PEM), for mutual TLS\n\
         \x20 --key FILE         TLS: private key of --cert (PEM)\n\
         \x20 -h, --help         print this help\n\
         \x20 -V, --version      print the version\n\n\
         Words after the options are joined with spaces; use `echo` first to send a message\n\
         that starts with `health` or `echo`.\n\
         Exit codes: 0 ok, {EXIT_USAGE} bad usage, {EXIT_FAILED} call failed (printed as `error: CODE: reason`),\n\
         {EXIT_NOT_SERVING} health answered but not SERVING.\n",
        version = crate::VERSION,
        streaming = super::stream::HELP,
    )
}

/// Parses the arguments (without the program name).
pub fn parse<I>(args: I) -> Result<Command, String>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    use lexopt::Arg::{Long, Short, Value};

    let mut addr = None;
    let mut tls = super::TlsFiles::default();
    let mut timeout = DEFAULT_TIMEOUT;
    let mut service = None;
    let mut subcommand = None;
    let mut words: Vec<String> = Vec::new();

    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            Long("addr") => addr = Some(value(&mut parser, "--addr")?),
            Long("ca") => tls.ca = Some(PathBuf::from(value(&mut parser, "--ca")?)),
            Long("cert") => tls.cert = Some(PathBuf::from(value(&mut parser, "--cert")?)),
            Long("key") => tls.key = Some(PathBuf::from(value(&mut parser, "--key")?)),
            Long("timeout") => {
                let v = value(&mut parser, "--timeout")?;
                timeout = parse_duration(v.trim()).map_err(|e| format!("--timeout: {e}"))?;
                if timeout.is_zero() {
                    return Err("--timeout: must be more than 0".into());
                }
            }
            Long("service") => service = Some(value(&mut parser, "--service")?),
            Value(v) => {
                let v = string(v, "MESSAGE")?;
                match v.as_str() {
                    "echo" | "health" if subcommand.is_none() && words.is_empty() => {
                        subcommand = Some(v)
                    }
                    _ => words.push(v),
                }
            }
            other => return Err(other.unexpected().to_string()),
        }
    }

    let addr = super::target_addr(addr.as_deref(), &tls)?;
    let target = Target { addr, timeout, tls };
    if subcommand.as_deref() == Some("health") {
        if !words.is_empty() {
            return Err(format!(
                "health takes no MESSAGE (got '{}')",
                words.join(" ")
            ));
        }
        return Ok(Command::Health {
            target,
            service: service.unwrap_or_default(),
        });
    }
    if service.is_some() {
        return Err("--service only applies to `health`".into());
    }
    let message = if words.is_empty() {
        DEFAULT_MESSAGE.to_owned()
    } else {
        words.join(" ")
    };
    Ok(Command::Echo { target, message })
}

fn value(parser: &mut lexopt::Parser, what: &str) -> Result<String, String> {
    let v = parser.value().map_err(|e| e.to_string())?;
    string(v, what)
}

fn string(v: OsString, what: &str) -> Result<String, String> {
    v.into_string()
        .map_err(|_| format!("{what}: value is not valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(addr: &str, secs: u64) -> Target {
        Target {
            addr: addr.into(),
            timeout: Duration::from_secs(secs),
            tls: Default::default(),
        }
    }

    fn echo(addr: &str, secs: u64, message: &str) -> Command {
        Command::Echo {
            target: target(addr, secs),
            message: message.into(),
        }
    }

    #[test]
    fn defaults_send_hello_world() {
        assert_eq!(
            parse(Vec::<String>::new()),
            Ok(echo(DEFAULT_ADDR, 5, "Hello World!"))
        );
    }

    #[test]
    fn message_words_are_joined_and_empty_message_is_kept() {
        assert_eq!(
            parse(["hi", "there"]),
            Ok(echo(DEFAULT_ADDR, 5, "hi there"))
        );
        assert_eq!(parse([""]), Ok(echo(DEFAULT_ADDR, 5, "")));
        assert_eq!(
            parse(["echo", "health"]),
            Ok(echo(DEFAULT_ADDR, 5, "health"))
        );
        assert_eq!(
            parse(["hi", "health"]),
            Ok(echo(DEFAULT_ADDR, 5, "hi health"))
        );
    }

    #[test]
    fn addr_without_scheme_gets_http() {
        assert_eq!(
            parse(["--addr", "10.0.0.7:50051", "--timeout", "250ms", "x"]),
            Ok(Command::Echo {
                target: Target {
                    addr: "http://10.0.0.7:50051".into(),
                    timeout: Duration::from_millis(250),
                    tls: Default::default(),
                },
                message: "x".into()
            })
        );
        assert_eq!(
            parse(["--addr=http://pi:1", "y"]),
            Ok(echo("http://pi:1", 5, "y"))
        );
    }

    #[test]
    fn health_with_and_without_service() {
        assert_eq!(
            parse(["health"]),
            Ok(Command::Health {
                target: target(DEFAULT_ADDR, 5),
                service: String::new()
            })
        );
        assert_eq!(
            parse(["health", "--service", "echo.Echo", "--timeout", "2"]),
            Ok(Command::Health {
                target: target(DEFAULT_ADDR, 2),
                service: "echo.Echo".into()
            })
        );
    }

    #[test]
    fn usage_errors() {
        assert!(parse(["--timeout", "soon"]).is_err());
        assert!(parse(["--timeout", "0"]).is_err());
        assert!(parse(["--bogus"]).is_err());
        assert!(parse(["--addr"]).is_err());
        assert!(parse(["--addr", "http://bad host:1"]).is_err());
        assert!(parse(["health", "extra"]).is_err());
        assert!(parse(["--service", "x", "hello"]).is_err());
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_files_make_https() {
        let Ok(Command::Echo { target, .. }) = parse([
            "--ca", "ca.pem", "--cert", "c.pem", "--key", "k.pem", "--addr", "pi:1",
        ]) else {
            panic!("not an echo command");
        };
        assert_eq!(target.addr, "https://pi:1");
        assert_eq!(target.tls.ca, Some(PathBuf::from("ca.pem")));
        assert_eq!(target.tls.key, Some(PathBuf::from("k.pem")));
        let Ok(Command::Health { target, .. }) = parse(["health", "--ca", "ca.pem"]) else {
            panic!("not a health command");
        };
        assert_eq!(target.addr, "https://127.0.0.1:50051");
        assert!(parse(["--ca", "ca.pem", "--addr", "http://pi:1"]).is_err());
        assert!(parse(["--addr", "https://pi:1"]).is_err());
        assert!(parse(["--ca", "ca.pem", "--cert", "c.pem"]).is_err());
        assert!(parse(["--ca", "ca.pem", "--key", "k.pem"]).is_err());
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_needs_the_tls_build() {
        let e = parse(["--ca", "ca.pem"]).unwrap_err();
        assert!(e.contains("built without TLS"), "{e}");
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse(["--help"]), Ok(Command::Help));
        assert_eq!(parse(["-V"]), Ok(Command::Version));
        for option in ["--addr", "--ca", "--cert", "--key", "bench"] {
            assert!(help().contains(option), "{option}");
        }
    }
}
