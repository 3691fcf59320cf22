//! `echo-client`'s streaming subcommands: the streaming Echo RPCs (`many`,
//! `joined`, `each`) and the board telemetry stream (`watch`). Each streamed
//! reply is printed the moment it arrives.
//!
//! `echo-client SUBCOMMAND [OPTIONS] [MESSAGE...]`: the subcommand comes
//! first; the connection options (`--addr`, `--timeout`, TLS) are those of
//! [`super::cli`], which parses them.

use std::ffi::{OsStr, OsString};
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::mpsc;
use tonic::codegen::tokio_stream::{self, Stream};
use tonic::transport::Channel;

use super::cli::{self, Target, EXIT_FAILED, EXIT_USAGE};
use super::{with_deadline, ClientError};
use crate::config::{parse_duration, show_duration};
use crate::proto::echo::echo_client::EchoClient;
use crate::proto::echo::{EchoManyRequest, EchoRequest};
use crate::status::Code;

/// The subcommands this file runs.
pub const SUBCOMMANDS: [&str; 4] = ["many", "joined", "each", "watch"];

/// Whether `arg` (the first command-line argument) is one of [`SUBCOMMANDS`].
pub fn is_subcommand(arg: &OsStr) -> bool {
    SUBCOMMANDS.iter().any(|s| arg == *s)
}

/// Lines for `echo-client --help`.
pub const HELP: &str = "\
\x20 echo-client many [OPTIONS] [--count N] [--interval DURATION] [MESSAGE...]\n\
\x20                                            echo.Echo/ReplyMany: N numbered replies (default 3)\n\
\x20 echo-client joined [OPTIONS] [MESSAGE...]  echo.Echo/ReplyJoined: one reply to all messages\n\
\x20 echo-client each [OPTIONS] [MESSAGE...]    echo.Echo/ReplyEach: one reply per message\n\
\x20 echo-client watch [OPTIONS] [--interval DURATION] [--count N]\n\
\x20                                            telemetry.Telemetry/Watch: live board readings\n\
\x20                                            (until Ctrl-C; needs a build with --features telemetry)\n\
\x20 joined/each send each MESSAGE word as one message, or each line of stdin when none is given.\n";

/// What to call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `echo.Echo/ReplyMany`.
    Many {
        /// The text to echo.
        message: String,
        /// Replies asked for (0 = the server's default).
        count: u32,
        /// Pause the server makes between replies.
        interval: Duration,
    },
    /// `echo.Echo/ReplyJoined` with these messages (`None`: stdin lines).
    Joined(Option<Vec<String>>),
    /// `echo.Echo/ReplyEach` with these messages (`None`: stdin lines).
    Each(Option<Vec<String>>),
    /// `telemetry.Telemetry/Watch`.
    Watch {
        /// Time between readings (zero = the server's default).
        interval: Duration,
        /// Readings to receive (0 = until Ctrl-C).
        count: u32,
    },
}

impl Call {
    /// The RPC this call makes, as `package.Service/Method`.
    pub fn method(&self) -> &'static str {
        match self {
            Call::Many { .. } => "echo.Echo/ReplyMany",
            Call::Joined(_) => "echo.Echo/ReplyJoined",
            Call::Each(_) => "echo.Echo/ReplyEach",
            Call::Watch { .. } => "telemetry.Telemetry/Watch",
        }
    }
}

/// Says which RPC the server does not serve, and for telemetry how to get
/// it, instead of the server's terse "unknown service".
fn explain_unimplemented(e: ClientError, method: &str) -> ClientError {
    if e.code != Code::Unimplemented || e.message.contains("--features") {
        return e;
    }
    let hint = if method.starts_with("telemetry.") {
        " (build echo-server with --features telemetry)"
    } else {
        ""
    };
    ClientError {
        message: format!("the server does not serve {method}{hint}: {}", e.message),
        ..e
    }
}

/// Parses `SUBCOMMAND [OPTIONS] [MESSAGE...]`; `Ok(None)` asks for help.
pub fn parse<I>(args: I) -> Result<Option<(Target, Call)>, String>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    use lexopt::Arg::{Long, Short, Value};

    let mut parser = lexopt::Parser::from_args(args);
    let subcommand = match parser.next().map_err(|e| e.to_string())? {
        Some(Value(v)) => v.to_string_lossy().into_owned(),
        _ => return Err(format!("expected one of {}", SUBCOMMANDS.join(", "))),
    };
    let mut count: Option<u32> = None;
    let mut interval: Option<Duration> = None;
    let mut words: Vec<String> = Vec::new();
    // Connection options go to cli::parse, which checks them as for `echo`.
    let mut connection: Vec<OsString> = Vec::new();
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(None),
            Long("count") => {
                let v = parser.value().map_err(|e| e.to_string())?;
                let v = v.to_string_lossy();
                count = Some(
                    v.trim()
                        .parse()
                        .map_err(|_| format!("--count: '{v}' is not a whole number"))?,
                );
            }
            Long("interval") => {
                let v = parser.value().map_err(|e| e.to_string())?;
                let d = parse_duration(v.to_string_lossy().trim())
                    .map_err(|e| format!("--interval: {e}"))?;
                interval = Some(d);
            }
            Long(name) => {
                let name = format!("--{name}");
                let v = parser.value().map_err(|e| e.to_string())?;
                connection.push(name.into());
                connection.push(v);
            }
            Value(v) => words.push(
                v.into_string()
                    .map_err(|_| "MESSAGE: value is not valid UTF-8".to_owned())?,
            ),
            other => return Err(other.unexpected().to_string()),
        }
    }
    let target = match cli::parse(connection)? {
        cli::Command::Echo { target, .. } => target,
        other => return Err(format!("unexpected options: {other:?}")),
    };
    let only = |what: &str, given: bool| {
        if given {
            Err(format!("{what} does not apply to `{subcommand}`"))
        } else {
            Ok(())
        }
    };
    let call = match subcommand.as_str() {
        "many" => Call::Many {
            message: if words.is_empty() {
                cli::DEFAULT_MESSAGE.to_owned()
            } else {
                words.join(" ")
            },
            count: count.unwrap_or(0),
            interval: interval.unwrap_or_default(),
        },
        "joined" | "each" => {
            only("--count", count.is_some())?;
            only("--interval", interval.is_some())?;
            let messages = (!words.is_empty()).then_some(words);
            if subcommand == "joined" {
                Call::Joined(messages)
            } else {
                Call::Each(messages)
            }
        }
        "watch" => {
            if !words.is_empty() {
                return Err(format!(
                    "watch takes no MESSAGE (got '{}')",
                    words.join(" ")
                ));
            }
            Call::Watch {
                interval: interval.unwrap_or_default(),
                count: count.unwrap_or(0),
            }
        }
        other => return Err(format!("unknown subcommand '{other}'")),
    };
    Ok(Some((target, call)))
}

/// Runs `echo-client SUBCOMMAND ...` (the whole argument list after the
/// program name) and returns the process exit code.
pub fn main<I>(args: I) -> ExitCode
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let (target, call) = match parse(args) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            print!(
                "echo-client {}: streaming calls\n\nUsage:\n{HELP}",
                crate::VERSION
            );
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e} (see --help)");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let runtime = match super::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        let channel = super::connect_target(&target).await?;
        let print = |line: &str| println!("{line}");
        let method = call.method();
        run(channel, call, target.timeout, print)
            .await
            .map_err(|e| explain_unimplemented(e, method))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Makes `call` on `channel`, handing each reply's text to `out` as it
/// arrives. `timeout` bounds a call whose messages are all known upfront
/// (sent as `grpc-timeout`), and otherwise the wait for each reply beyond
/// the interval asked for; a call fed from stdin has no deadline.
pub async fn run(
    channel: Channel,
    call: Call,
    timeout: Duration,
    mut out: impl FnMut(&str),
) -> Result<(), ClientError> {
    let mut client = EchoClient::new(channel.clone());
    match call {
        Call::Many {
            message,
            count,
            interval,
        } => {
            let request = EchoManyRequest {
                message,
                count,
                interval_ms: u32::try_from(interval.as_millis()).unwrap_or(u32::MAX),
            };
            let replies = with_deadline(timeout, client.reply_many(request)).await?;
            let mut replies = replies.into_inner();
            while let Some(reply) = next(&mut replies, Some(interval + timeout)).await? {
                out(&reply.message);
            }
        }
        Call::Joined(messages) => {
            let (requests, deadline) = requests(messages, timeout);
            let call = client.reply_joined(requests);
            let reply = match deadline {
                Some(timeout) => with_deadline(timeout, call).await?,
                None => call.await.map_err(|s| ClientError::from_status(&s))?,
            };
            out(&reply.into_inner().message);
        }
        Call::Each(messages) => {
            let (requests, deadline) = requests(messages, timeout);
            let replies = with_deadline(timeout, client.reply_each(requests)).await?;
            let mut replies = replies.into_inner();
            let all = async {
                while let Some(reply) = next(&mut replies, None).await? {
                    out(&reply.message);
                }
                Ok::<(), ClientError>(())
            };
            match deadline {
                Some(d) => tokio::time::timeout(d, all).await.map_err(|_| late(d))??,
                None => all.await?,
            }
        }
        Call::Watch { interval, count } => watch(channel, interval, count, timeout, out).await?,
    }
    Ok(())
}

/// The request stream for `joined`/`each`: the words, or stdin's lines;
/// and the whole call's deadline (none when reading stdin, where the
/// person typing sets the pace).
fn requests(
    messages: Option<Vec<String>>,
    timeout: Duration,
) -> (
    Pin<Box<dyn Stream<Item = EchoRequest> + Send>>,
    Option<Duration>,
) {
    match messages {
        Some(words) => {
            let requests = words.into_iter().map(|message| EchoRequest { message });
            (Box::pin(tokio_stream::iter(requests)), Some(timeout))
        }
        None => (Box::pin(StdinLines::spawn()), None),
    }
}

/// The next message of a response stream, waiting at most `gap` if given.
async fn next<T>(
    stream: &mut tonic::Streaming<T>,
    gap: Option<Duration>,
) -> Result<Option<T>, ClientError> {
    let message = match gap {
        Some(gap) => tokio::time::timeout(gap, stream.message())
            .await
            .map_err(|_| late(gap))?,
        None => stream.message().await,
    };
    message.map_err(|status| ClientError::from_status(&status))
}

fn late(gap: Duration) -> ClientError {
    ClientError {
        code: Code::DeadlineExceeded,
        message: format!("no reply within {}", show_duration(gap)),
        addr: None,
    }
}

/// Stdin's lines as Echo requests, read on a thread (the runtime has no
/// stdin support) and passed through a small bounded channel, so a fast
/// producer (a pipe) waits for the call to take them.
struct StdinLines(mpsc::Receiver<String>);

impl StdinLines {
    fn spawn() -> StdinLines {
        let (tx, rx) = mpsc::channel(16);
        std::thread::spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { break };
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        StdinLines(rx)
    }
}

impl Stream for StdinLines {
    type Item = EchoRequest;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<EchoRequest>> {
        self.0
            .poll_recv(cx)
            .map(|line| line.map(|message| EchoRequest { message }))
    }
}

/// `telemetry.Telemetry/Watch`: one line per reading.
#[cfg(feature = "telemetry")]
async fn watch(
    channel: Channel,
    interval: Duration,
    count: u32,
    timeout: Duration,
    mut out: impl FnMut(&str),
) -> Result<(), ClientError> {
    use crate::proto::telemetry::telemetry_client::TelemetryClient;
    use crate::proto::telemetry::WatchRequest;

    let request = WatchRequest {
        interval_ms: u32::try_from(interval.as_millis()).unwrap_or(u32::MAX),
        count,
    };
    let mut client = TelemetryClient::new(channel);
    let readings = with_deadline(timeout, client.watch(request)).await?;
    let mut readings = readings.into_inner();
    // The server's default interval is 1 s; allow for it when none was asked.
    let gap = interval.max(Duration::from_secs(1)) + timeout;
    while let Some(reading) = next(&mut readings, Some(gap)).await? {
        out(&format_reading(&reading));
    }
    Ok(())
}

/// Without the `telemetry` feature there is no Telemetry client to call.
#[cfg(not(feature = "telemetry"))]
async fn watch(
    _: Channel,
    _: Duration,
    _: u32,
    _: Duration,
    _: impl FnMut(&str),
) -> Result<(), ClientError> {
    Err(ClientError {
        code: Code::Unimplemented,
        message: "this echo-client was built without telemetry; rebuild with --features telemetry"
            .into(),
        addr: None,
    })
}

/// One reading as a line:
/// `#3 23:41:07Z  cpu 47.5 °C  load 0.52 0.58 0.59  mem 1.21 of 3.70 GiB free  up 3d 04:12:55`.
#[cfg(feature = "telemetry")]
pub fn format_reading(r: &crate::proto::telemetry::Reading) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    let secs = r.unix_time_ms / 1000 % 86_400;
    let cpu = r
        .cpu_temp_celsius
        .map_or_else(|| "n/a".to_owned(), |t| format!("{t:.1} °C"));
    let up = r.uptime_seconds.max(0.0) as u64;
    format!(
        "#{seq} {h:02}:{m:02}:{s:02}Z  cpu {cpu}  load {l1:.2} {l5:.2} {l15:.2}  \
         mem {avail:.2} of {total:.2} GiB free  up {d}d {uh:02}:{um:02}:{us:02}",
        seq = r.seq,
        h = secs / 3600,
        m = secs / 60 % 60,
        s = secs % 60,
        l1 = r.load1,
        l5 = r.load5,
        l15 = r.load15,
        avail = r.mem_available_bytes as f64 / GIB,
        total = r.mem_total_bytes as f64 / GIB,
        d = up / 86_400,
        uh = up / 3600 % 24,
        um = up / 60 % 60,
        us = up % 60,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> Result<Option<(Target, Call)>, String> {
        parse(args.iter().copied())
    }

    fn call(args: &[&str]) -> Call {
        parsed(args).expect("parses").expect("not help").1
    }

    #[test]
    fn subcommands_are_recognised() {
        assert!(is_subcommand(OsStr::new("many")));
        assert!(is_subcommand(OsStr::new("watch")));
        assert!(!is_subcommand(OsStr::new("echo")));
    }

    #[test]
    fn many_options() {
        assert_eq!(
            call(&["many"]),
            Call::Many {
                message: cli::DEFAULT_MESSAGE.into(),
                count: 0,
                interval: Duration::ZERO
            }
        );
        assert_eq!(
            call(&["many", "--count", "5", "--interval", "250ms", "hi", "there"]),
            Call::Many {
                message: "hi there".into(),
                count: 5,
                interval: Duration::from_millis(250)
            }
        );
    }

    #[test]
    fn joined_and_each_take_words_or_stdin() {
        assert_eq!(
            call(&["joined", "a", "b"]),
            Call::Joined(Some(vec!["a".into(), "b".into()]))
        );
        assert_eq!(call(&["each"]), Call::Each(None));
        assert!(parsed(&["each", "--count", "2"]).is_err());
    }

    #[test]
    fn watch_options_and_connection_options() {
        let (target, call) = parsed(&[
            "watch",
            "--addr",
            "10.0.0.7:50051",
            "--interval",
            "2s",
            "--count",
            "3",
            "--timeout",
            "1s",
        ])
        .expect("parses")
        .expect("not help");
        assert_eq!(target.addr, "http://10.0.0.7:50051");
        assert_eq!(target.timeout, Duration::from_secs(1));
        assert_eq!(
            call,
            Call::Watch {
                interval: Duration::from_secs(2),
                count: 3
            }
        );
        assert!(parsed(&["watch", "now"]).is_err());
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(parsed(&["many", "--count", "x"]).is_err());
        assert!(parsed(&["many", "--count", "-1"]).is_err());
        assert!(parsed(&["many", "--interval", "soon"]).is_err());
        assert!(parsed(&["many", "--nope", "1"]).is_err());
        assert!(parsed(&["many", "--addr"]).is_err());
        assert_eq!(parsed(&["each", "--help"]), Ok(None));
    }

    #[test]
    fn unimplemented_names_the_method() {
        let e = ClientError {
            code: Code::Unimplemented,
            message: "unknown service".into(),
            addr: None,
        };
        let call = Call::Watch {
            interval: Duration::ZERO,
            count: 0,
        };
        let explained = explain_unimplemented(e.clone(), call.method());
        assert_eq!(
            explained.message,
            "the server does not serve telemetry.Telemetry/Watch \
             (build echo-server with --features telemetry): unknown service"
        );
        let many = explain_unimplemented(e, "echo.Echo/ReplyMany");
        assert!(many
            .message
            .starts_with("the server does not serve echo.Echo/ReplyMany:"));
        let other = ClientError {
            code: Code::Internal,
            message: "x".into(),
            addr: None,
        };
        assert_eq!(explain_unimplemented(other.clone(), "m"), other);
    }

    #[cfg(feature = "telemetry")]
    #[test]
    fn readings_read_well() {
        let reading = crate::proto::telemetry::Reading {
            seq: 3,
            unix_time_ms: 1_700_000_467_000,
            cpu_temp_celsius: Some(47.5),
            load1: 0.52,
            load5: 0.58,
            load15: 0.59,
            mem_total_bytes: 4 << 30,
            mem_available_bytes: 3 << 29,
            uptime_seconds: 3.0 * 86_400.0 + 4.0 * 3600.0 + 12.0 * 60.0 + 55.5,
        };
        assert_eq!(
            format_reading(&reading),
            "#3 22:21:07Z  cpu 47.5 °C  load 0.52 0.58 0.59  mem 1.50 of 4.00 GiB free  up 3d 04:12:55"
        );
    }
}
