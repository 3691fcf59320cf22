//! `echo-client bench`: a load generator for `echo.Echo/Reply`.
//!
//! Opens `--connections` separate HTTP/2 connections (one tonic channel each)
//! and keeps `--streams` unary calls in flight on each, until `--requests`
//! calls were issued or `--duration` elapsed (whichever comes first), or
//! Ctrl-C. Every reply is checked to be exactly `You said: <message>`.
//!
//! While it runs, a progress line goes to stderr: rewritten in place with `\r`
//! on a terminal, one plain line per second otherwise. At the end a summary
//! goes to stdout (text, or one JSON object with `--json`): requests, errors by
//! gRPC status name, successful replies per second and the latency
//! percentiles of successful calls from an HDR histogram.
//!
//! Failures never panic: a refused connection, a server that dies mid-run, a
//! non-OK status, a wrong reply or a client-side timeout are counted under a
//! name (`UNAVAILABLE`, `WRONG_REPLY`, `DEADLINE_EXCEEDED`, ...) and reported.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::config::{parse_duration, parse_size};
use crate::proto::echo::echo_client::EchoClient;
use crate::proto::echo::EchoRequest;
use crate::service::REPLY_PREFIX;
use crate::status::Code;

/// Address used when `--addr` is not given.
pub use super::DEFAULT_ADDR;
/// Most `--connections` accepted: each is a socket (a file descriptor on both
/// ends) and a connection the server must allow (its default `--max-connections`
/// is 256). More fails at once instead of a run of refusals.
pub const MAX_CONNECTIONS: usize = 1000;
/// Most calls in flight at once (`--connections` × `--streams`).
pub const MAX_IN_FLIGHT: usize = 100_000;
/// Time each connection has to be established.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Run length when neither `--duration` nor `--requests` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// The message sent when `--message-size` is not given.
pub const DEFAULT_MESSAGE: &str = "hello";
/// Error name for a reply whose text is not `You said: <message>`.
pub const WRONG_REPLY: &str = "WRONG_REPLY";

/// Largest latency the histogram tracks exactly (longer ones saturate): 1 h in µs.
const MAX_LATENCY_US: u64 = 3_600_000_000;
/// Pause after a transport failure so a dead server is not hammered in a tight loop.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// `echo-client bench --help`.
pub const HELP: &str = "\
Usage: echo-client bench [OPTIONS]

Drives unary echo.Echo/Reply calls and reports throughput and latency.

Options:
  --addr URL            server address: http://HOST:PORT, https://HOST:PORT or HOST:PORT
                        [default: http://127.0.0.1:50051]
  --ca FILE             TLS: trust this PEM CA (a HOST:PORT address then means https://)
  --cert FILE           TLS: client certificate chain (PEM), for mutual TLS
  --key FILE            TLS: private key of --cert
  --connections C       separate HTTP/2 connections, 1 to 1000 [default: 1]
  --streams S           concurrent calls per connection; C x S at most 100000 [default: 1]
  --duration D          stop after this long, e.g. 10s, 500ms, 2m
                        [default: 10s, unless --requests is given]
  --requests N          stop after N calls
  --message-size B      request message of B bytes, e.g. 64, 1KiB [default: \"hello\"]
  --timeout D           per-call deadline; late calls count as DEADLINE_EXCEEDED [default: 10s]
  --json                print the summary as one JSON object
  -h, --help            print this help

Progress goes to stderr, the summary to stdout. Ctrl-C stops the run and prints
the summary so far. A call succeeds only with grpc-status 0 and the exact reply
`You said: <message>`; failures are counted by status name. Exit status: 0 if
at least one call ran and every call succeeded, 1 for a bad command line, 2 if
any call failed, none completed, or a connection could not be made.
";

/// What `echo-client bench` was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Server URL, `http://host:port` or `https://host:port` (a bare
    /// `host:port` gets `https://` with TLS files, `http://` without).
    pub addr: String,
    /// TLS files (`--ca`, `--cert`, `--key`); none for plaintext.
    pub tls: super::TlsFiles,
    /// Number of separate HTTP/2 connections.
    pub connections: usize,
    /// Concurrent calls kept in flight on each connection.
    pub streams: usize,
    /// Time bound; `None` = only the request bound applies.
    pub duration: Option<Duration>,
    /// Request bound; `None` = only the time bound applies.
    pub requests: Option<u64>,
    /// Request message length in bytes; `None` = the 5-byte `hello`.
    pub message_size: Option<usize>,
    /// Per-call deadline.
    pub timeout: Duration,
    /// Print the summary as JSON.
    pub json: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            addr: DEFAULT_ADDR.to_string(),
            tls: super::TlsFiles::default(),
            connections: 1,
            streams: 1,
            duration: Some(DEFAULT_DURATION),
            requests: None,
            message_size: None,
            timeout: Duration::from_secs(10),
            json: false,
        }
    }
}

impl Options {
    /// The request message every call sends.
    pub fn message(&self) -> String {
        match self.message_size {
            None => DEFAULT_MESSAGE.to_string(),
            // A repeating printable pattern, so a truncated or shifted echo is caught.
            Some(n) => (b'a'..=b'z').cycle().take(n).map(char::from).collect(),
        }
    }
}

/// The parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Run a benchmark.
    Run(Options),
    /// Print [`HELP`].
    Help,
}

/// Parses the arguments after `bench`.
pub fn parse_args<I>(args: I) -> Result<Parsed, String>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    use lexopt::prelude::*;
    let mut o = Options::default();
    let mut addr = None;
    let mut duration_given = false;
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(Parsed::Help),
            Long("json") => o.json = true,
            Long(flag) => {
                let flag = flag.to_string();
                let value = parser.value().map_err(|e| e.to_string())?;
                let value = value
                    .into_string()
                    .map_err(|_| format!("--{flag}: value is not valid UTF-8"))?;
                let bad = |e: String| format!("--{flag}: {e}");
                match flag.as_str() {
                    "addr" => addr = Some(value),
                    "ca" => o.tls.ca = Some(value.into()),
                    "cert" => o.tls.cert = Some(value.into()),
                    "key" => o.tls.key = Some(value.into()),
                    "connections" => {
                        o.connections = parse_count(&value).map_err(bad)?;
                        if o.connections > MAX_CONNECTIONS {
                            return Err(bad(format!(
                                "{} is too many (at most {MAX_CONNECTIONS}: each is a socket, \
                                 and the server's default --max-connections is 256)",
                                o.connections
                            )));
                        }
                    }
                    "streams" => o.streams = parse_count(&value).map_err(bad)?,
                    "duration" => {
                        let d = parse_duration(&value).map_err(bad)?;
                        if d.is_zero() {
                            return Err(bad("must be more than 0".into()));
                        }
                        o.duration = Some(d);
                        duration_given = true;
                    }
                    "requests" => {
                        o.requests = Some(parse_count(&value).map_err(bad)? as u64);
                    }
                    "message-size" => {
                        let n = parse_size(&value).map_err(bad)?;
                        let n = usize::try_from(n).map_err(|_| bad("too large".into()))?;
                        o.message_size = Some(n);
                    }
                    "timeout" => {
                        let d = parse_duration(&value).map_err(bad)?;
                        if d.is_zero() {
                            return Err(bad("must be more than 0".into()));
                        }
                        o.timeout = d;
                    }
                    _ => return Err(format!("unknown option --{flag} (see --help)")),
                }
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    if o.requests.is_some() && !duration_given {
        o.duration = None;
    }
    if o.connections.saturating_mul(o.streams) > MAX_IN_FLIGHT {
        return Err(format!(
            "--connections {} x --streams {} is more than {MAX_IN_FLIGHT} calls in flight",
            o.connections, o.streams
        ));
    }
    o.addr = super::target_addr(addr.as_deref(), &o.tls)?;
    Ok(Parsed::Run(o))
}

/// A positive count (connections, streams, requests).
fn parse_count(v: &str) -> Result<usize, String> {
    match v.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{v}' is not a positive whole number")),
    }
}

/// What one worker (or the whole run) recorded.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Latency of successful calls, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Failed calls by error name (gRPC status name or [`WRONG_REPLY`]).
    pub errors: BTreeMap<&'static str, u64>,
}

impl Stats {
    /// Empty statistics.
    pub fn new() -> Stats {
        Stats {
            // 1 µs .. 1 h at 3 significant digits: constants that are always valid.
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!())),
            errors: BTreeMap::new(),
        }
    }

    /// Records one successful call.
    pub fn ok(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.saturating_record(us.max(1));
    }

    /// Records one failed call.
    pub fn error(&mut self, name: &'static str) {
        *self.errors.entry(name).or_insert(0) += 1;
    }

    /// Adds another worker's statistics to these.
    pub fn merge(&mut self, other: &Stats) {
        // Both histograms have the same bounds, so adding cannot fail; saturate if it would.
        if self.latency_us.add(&other.latency_us).is_err() {
            for v in other.latency_us.iter_recorded() {
                self.latency_us
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
        for (name, n) in &other.errors {
            *self.errors.entry(name).or_insert(0) += n;
        }
    }
}

impl Default for Stats {
    fn default() -> Stats {
        Stats::new()
    }
}

/// The result of a run.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Server URL.
    pub addr: String,
    /// Connections used.
    pub connections: usize,
    /// Concurrent calls per connection.
    pub streams: usize,
    /// Request message length in bytes.
    pub message_size: usize,
    /// Wall time from the first call to the end of the run.
    pub elapsed: Duration,
    /// Whether Ctrl-C ended the run early.
    pub interrupted: bool,
    /// Everything recorded.
    pub stats: Stats,
}

/// Latency figures of successful calls.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest call.
    pub max: Duration,
    /// Mean.
    pub mean: Duration,
}

impl Summary {
    /// Successful calls.
    pub fn ok(&self) -> u64 {
        self.stats.latency_us.len()
    }

    /// Failed calls.
    pub fn errors(&self) -> u64 {
        self.stats.errors.values().sum()
    }

    /// Finished calls, successful or not.
    pub fn requests(&self) -> u64 {
        self.ok() + self.errors()
    }

    /// Successful calls per second of wall time (0 if no time passed).
    pub fn ok_per_sec(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.ok() as f64 / s
        } else {
            0.0
        }
    }

    /// Latency percentiles of successful calls; `None` if there were none.
    pub fn latency(&self) -> Option<Latency> {
        let h = &self.stats.latency_us;
        if h.is_empty() {
            return None;
        }
        let us = Duration::from_micros;
        Some(Latency {
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            max: us(h.max()),
            mean: Duration::from_secs_f64(h.mean() / 1e6),
        })
    }

    /// The human-readable summary.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: {} connection(s) x {} stream(s), {}-byte message{}",
            self.addr,
            self.connections,
            self.streams,
            self.message_size,
            if self.interrupted {
                " (interrupted, partial results)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            "requests: {} ({} ok, {} failed) in {:.2} s",
            self.requests(),
            self.ok(),
            self.errors(),
            self.elapsed.as_secs_f64()
        );
        if !self.stats.errors.is_empty() {
            let list: Vec<String> = self
                .stats
                .errors
                .iter()
                .map(|(name, n)| format!("{name} {n}"))
                .collect();
            let _ = writeln!(s, "errors:   {}", list.join(", "));
        }
        let _ = writeln!(s, "req/s:    {:.1} (successful replies)", self.ok_per_sec());
        match self.latency() {
            Some(l) => {
                let _ = writeln!(
                    s,
                    "latency:  p50 {}  p90 {}  p99 {}  max {}  mean {}",
                    ms(l.p50),
                    ms(l.p90),
                    ms(l.p99),
                    ms(l.max),
                    ms(l.mean)
                );
            }
            None => s.push_str("latency:  - (no successful call)\n"),
        }
        s
    }

    /// The summary as one JSON object (latencies in milliseconds).
    pub fn to_json(&self) -> String {
        let mut s = String::from("{");
        let _ = write!(
            s,
            "\"addr\":{},\"connections\":{},\"streams\":{},\"message_size\":{},",
            json_str(&self.addr),
            self.connections,
            self.streams,
            self.message_size
        );
        let _ = write!(
            s,
            "\"requests\":{},\"ok\":{},\"failed\":{},\"errors\":{{",
            self.requests(),
            self.ok(),
            self.errors()
        );
        for (i, (name, n)) in self.stats.errors.iter().enumerate() {
            let _ = write!(
                s,
                "{}{}:{}",
                if i > 0 { "," } else { "" },
                json_str(name),
                n
            );
        }
        let _ = write!(
            s,
            "}},\"elapsed_s\":{:.6},\"req_per_s\":{:.3},\"interrupted\":{},\"latency_ms\":",
            self.elapsed.as_secs_f64(),
            self.ok_per_sec(),
            self.interrupted
        );
        match self.latency() {
            Some(l) => {
                let f = |d: Duration| d.as_secs_f64() * 1e3;
                let _ = write!(
                    s,
                    "{{\"p50\":{:.3},\"p90\":{:.3},\"p99\":{:.3},\"max\":{:.3},\"mean\":{:.3}}}",
                    f(l.p50),
                    f(l.p90),
                    f(l.p99),
                    f(l.max),
                    f(l.mean)
                );
            }
            None => s.push_str("null"),
        }
        s.push('}');
        s
    }
}

/// `1.234 ms`.
fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// A JSON string literal.
fn json_str(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// The error name for a failed call's gRPC status (transport failures that
/// tonic labels UNKNOWN or CANCELLED count as UNAVAILABLE, as `echo-client` prints them).
fn status_name(status: &tonic::Status) -> &'static str {
    super::ClientError::from_status(status).code.name()
}

/// Counters the workers share with the progress line and the request bound.
struct Shared {
    /// Calls started so far (used to stop at `--requests`).
    issued: AtomicU64,
    /// The request bound, if any.
    limit: Option<u64>,
    /// Calls finished, successful or not.
    done: AtomicU64,
    /// Calls failed.
    failed: AtomicU64,
    /// Set when the connection is known to be gone (for the progress line).
    down: AtomicBool,
}

impl Shared {
    /// Takes a ticket for one more call; false once the request bound is reached.
    fn claim(&self) -> bool {
        match self.limit {
            None => true,
            Some(n) => self.issued.fetch_add(1, Ordering::Relaxed) < n,
        }
    }
}

/// One closed-loop caller: one call in flight at a time until stopped or out of tickets.
async fn worker(
    mut client: EchoClient<Channel>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    message: Arc<str>,
    timeout: Duration,
) -> Stats {
    let mut stats = Stats::new();
    let want_len = REPLY_PREFIX.len() + message.len();
    loop {
        if *stop.borrow() || !shared.claim() {
            break;
        }
        let request = EchoRequest {
            message: message.to_string(),
        };
        let start = Instant::now();
        let call = tokio::time::timeout(timeout, client.reply(request));
        let result = tokio::select! {
            biased;
            _ = stop.changed() => break, // abandoned in flight: not counted
            r = call => r,
        };
        let failed = match result {
            Ok(Ok(reply)) => {
                let text = reply.into_inner().message;
                if text.len() == want_len
                    && text.starts_with(REPLY_PREFIX)
                    && text.ends_with(&*message)
                {
                    stats.ok(start.elapsed());
                    shared.down.store(false, Ordering::Relaxed);
                    None
                } else {
                    Some(WRONG_REPLY)
                }
            }
            Ok(Err(status)) => Some(status_name(&status)),
            Err(_elapsed) => Some(Code::DeadlineExceeded.name()),
        };
        shared.done.fetch_add(1, Ordering::Relaxed);
        if let Some(name) = failed {
            stats.error(name);
            shared.failed.fetch_add(1, Ordering::Relaxed);
            if name == Code::Unavailable.name() {
                shared.down.store(true, Ordering::Relaxed);
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = tokio::time::sleep(RETRY_PAUSE) => {}
                }
            }
        }
    }
    stats
}

/// Runs the benchmark described by `opts` on the current tokio runtime.
/// Returns an error only if the run could not start (connection refused).
pub async fn run(opts: &Options) -> Result<Summary, String> {
    let mut channels = Vec::with_capacity(opts.connections);
    for i in 0..opts.connections {
        // The same connect code as every echo-client command (TLS included).
        let channel = super::connect_with(&opts.addr, CONNECT_TIMEOUT, &opts.tls)
            .await
            .map_err(|e| format!("connection {} of {}: {e}", i + 1, opts.connections))?;
        channels.push(channel);
    }
    let message: Arc<str> = Arc::from(opts.message());
    let shared = Arc::new(Shared {
        issued: AtomicU64::new(0),
        limit: opts.requests,
        done: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        down: AtomicBool::new(false),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let start = Instant::now();
    let mut workers = JoinSet::new();
    for channel in &channels {
        for _ in 0..opts.streams {
            workers.spawn(worker(
                EchoClient::new(channel.clone()),
                Arc::clone(&shared),
                stop_rx.clone(),
                Arc::clone(&message),
                opts.timeout,
            ));
        }
    }

    let mut progress = Progress::new(std::io::stderr().is_terminal(), opts.requests);
    let mut tick = tokio::time::interval(progress.period());
    tick.tick().await; // the first tick is immediate
    let deadline = opts
        .duration
        .map(|d| tokio::time::Instant::from_std(start + d));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut total = Stats::new();
    let mut interrupted = false;
    loop {
        tokio::select! {
            joined = workers.join_next() => match joined {
                Some(Ok(stats)) => total.merge(&stats),
                Some(Err(_)) => total.error("CLIENT_TASK_FAILED"),
                None => break,
            },
            _ = tick.tick() => progress.line(&shared, start.elapsed()),
            _ = sleep_until(deadline) => break,
            r = &mut ctrl_c => {
                // If the handler cannot be installed, keep running to the bounds.
                if r.is_ok() {
                    interrupted = true;
                    break;
                }
            }
        }
    }
    let elapsed = start.elapsed();
    let _ = stop_tx.send(true);
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(stats) => total.merge(&stats),
            Err(_) => total.error("CLIENT_TASK_FAILED"),
        }
    }
    progress.finish(&shared, elapsed);
    Ok(Summary {
        addr: opts.addr.clone(),
        connections: opts.connections,
        streams: opts.streams,
        message_size: message.len(),
        elapsed,
        interrupted,
        stats: total,
    })
}

/// Sleeps until `deadline`, or forever if there is none.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The progress output on stderr.
struct Progress {
    tty: bool,
    limit: Option<u64>,
    last_done: u64,
    last_at: Duration,
    wrote: bool,
}

impl Progress {
    fn new(tty: bool, limit: Option<u64>) -> Progress {
        Progress {
            tty,
            limit,
            last_done: 0,
            last_at: Duration::ZERO,
            wrote: false,
        }
    }

    fn period(&self) -> Duration {
        if self.tty {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(1)
        }
    }

    fn line(&mut self, shared: &Shared, now: Duration) {
        let done = shared.done.load(Ordering::Relaxed);
        let failed = shared.failed.load(Ordering::Relaxed);
        let dt = (now - self.last_at).as_secs_f64();
        let rate = if dt > 0.0 {
            (done - self.last_done.min(done)) as f64 / dt
        } else {
            0.0
        };
        self.last_done = done;
        self.last_at = now;
        let of = self.limit.map(|n| format!("/{n}")).unwrap_or_default();
        let down = if shared.down.load(Ordering::Relaxed) {
            "  (server unavailable)"
        } else {
            ""
        };
        let text = format!(
            "{:6.1}s  {done}{of} done  {rate:.0} req/s  {failed} errors{down}",
            now.as_secs_f64()
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r{text:<70}");
        } else {
            let _ = writeln!(err, "{text}");
        }
        let _ = err.flush();
        self.wrote = true;
    }

    fn finish(&mut self, shared: &Shared, elapsed: Duration) {
        if self.tty && self.wrote {
            self.line(shared, elapsed);
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// `echo-client bench ARGS...`: parses, runs, prints; returns the exit status.
pub fn main<I>(args: I) -> ExitCode
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let opts = match parse_args(args) {
        Ok(Parsed::Run(opts)) => opts,
        Ok(Parsed::Help) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match super::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(run(&opts)) {
        Ok(summary) => {
            if opts.json {
                println!("{}", summary.to_json());
            } else {
                print!("{}", summary.to_text());
            }
            if summary.ok() == 0 {
                eprintln!("error: no call succeeded");
                ExitCode::from(2)
            } else if summary.errors() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Parsed, String> {
        parse_args(args.iter().copied())
    }

    fn opts(args: &[&str]) -> Options {
        match parse(args) {
            Ok(Parsed::Run(o)) => o,
            other => panic!("expected options, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let o = opts(&[]);
        assert_eq!(o, Options::default());
        assert_eq!(o.duration, Some(Duration::from_secs(10)));
        assert_eq!(o.requests, None);
        assert_eq!(o.message(), "hello");
    }

    #[test]
    fn all_flags() {
        let o = opts(&[
            "--addr",
            "http://10.0.0.7:50051",
            "--connections",
            "10",
            "--streams=20",
            "--duration",
            "2m",
            "--requests",
            "5000",
            "--message-size",
            "1KiB",
            "--timeout",
            "500ms",
            "--json",
        ]);
        assert_eq!(o.addr, "http://10.0.0.7:50051");
        assert_eq!((o.connections, o.streams), (10, 20));
        assert_eq!(o.duration, Some(Duration::from_secs(120)));
        assert_eq!(o.requests, Some(5000));
        assert_eq!(o.message_size, Some(1024));
        assert_eq!(o.message().len(), 1024);
        assert_eq!(o.timeout, Duration::from_millis(500));
        assert!(o.json);
    }

    #[test]
    fn requests_alone_lifts_the_default_time_bound() {
        let o = opts(&["--requests", "100"]);
        assert_eq!((o.requests, o.duration), (Some(100), None));
        let o = opts(&["--requests", "100", "--duration", "3s"]);
        assert_eq!(o.duration, Some(Duration::from_secs(3)));
    }

    #[test]
    fn bare_host_port_gets_http() {
        assert_eq!(
            opts(&["--addr", "pi.local:50051"]).addr,
            "http://pi.local:50051"
        );
    }

    #[test]
    fn tls_files_make_the_address_https() {
        let parsed = parse(&["--ca", "ca.pem", "--addr", "pi:1"]);
        if cfg!(feature = "tls") {
            let Ok(Parsed::Run(o)) = parsed else {
                panic!("{parsed:?}");
            };
            assert_eq!(o.addr, "https://pi:1");
            assert_eq!(o.tls.ca, Some("ca.pem".into()));
        } else {
            assert!(parsed.unwrap_err().contains("without TLS"));
        }
        assert!(
            parse(&["--addr", "https://x:1"]).is_err(),
            "https needs --ca"
        );
    }

    #[test]
    fn connections_up_to_the_limit_are_accepted() {
        assert_eq!(opts(&["--connections", "1000"]).connections, 1000);
        let e = parse(&["--connections", "1001"]).unwrap_err();
        assert!(e.contains("at most 1000"), "{e}");
    }

    #[test]
    fn help() {
        assert_eq!(parse(&["--help"]), Ok(Parsed::Help));
        assert_eq!(parse(&["-h"]), Ok(Parsed::Help));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for args in [
            &["--connections", "0"][..],
            &["--streams", "-1"],
            &["--requests", "many"],
            &["--duration", "0s"],
            &["--duration", "10 parsecs"],
            &["--timeout", "0"],
            &["--message-size", "3XB"],
            &["--addr", "ftp://x:1"],
            &["--connections", "10000"],
            &["--connections", "1000", "--streams", "101"],
            &["--cert", "c.pem"],
            &["--frobnicate", "1"],
            &["--connections"],
            &["positional"],
        ] {
            assert!(parse(args).is_err(), "{args:?} should be rejected");
        }
    }

    #[test]
    fn message_pattern_has_the_requested_size() {
        let o = Options {
            message_size: Some(30),
            ..Options::default()
        };
        assert_eq!(o.message(), "abcdefghijklmnopqrstuvwxyzabcd");
        let o = Options {
            message_size: Some(0),
            ..Options::default()
        };
        assert_eq!(o.message(), "");
    }

    fn summary(latencies_us: &[u64], errors: &[&'static str], secs: u64) -> Summary {
        let mut stats = Stats::new();
        for &us in latencies_us {
            stats.ok(Duration::from_micros(us));
        }
        for &e in errors {
            stats.error(e);
        }
        Summary {
            addr: "http://h:1".into(),
            connections: 2,
            streams: 3,
            message_size: 5,
            elapsed: Duration::from_secs(secs),
            interrupted: false,
            stats,
        }
    }

    #[test]
    fn counts_and_rate() {
        let lat: Vec<u64> = (1..=1000).collect();
        let s = summary(&lat, &["UNAVAILABLE", "UNAVAILABLE", WRONG_REPLY], 4);
        assert_eq!(s.ok(), 1000);
        assert_eq!(s.errors(), 3);
        assert_eq!(s.requests(), 1003);
        assert_eq!(s.ok_per_sec(), 250.0);
        assert_eq!(s.stats.errors.get("UNAVAILABLE"), Some(&2));
        assert_eq!(s.stats.errors.get(WRONG_REPLY), Some(&1));
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        // 1..=1000 µs: the quantiles are the values themselves (exact below 2048 at 3 digits).
        let lat: Vec<u64> = (1..=1000).collect();
        let l = summary(&lat, &[], 1).latency().expect("has latencies");
        assert_eq!(l.p50, Duration::from_micros(500));
        assert_eq!(l.p90, Duration::from_micros(900));
        assert_eq!(l.p99, Duration::from_micros(990));
        assert_eq!(l.max, Duration::from_micros(1000));
        assert_eq!(l.mean, Duration::from_secs_f64(500.5e-6));
    }

    #[test]
    fn large_latencies_keep_three_significant_digits() {
        let l = summary(&[123_456, 2_000_000], &[], 1)
            .latency()
            .expect("has latencies");
        let p50 = l.p50.as_micros() as f64;
        assert!((p50 - 123_456.0).abs() / 123_456.0 < 0.001, "{p50}");
        let max = l.max.as_micros() as f64;
        assert!((max - 2e6).abs() / 2e6 < 0.001, "{max}");
    }

    #[test]
    fn no_success_means_no_latency_and_zero_rate() {
        let s = summary(&[], &["UNAVAILABLE"], 0);
        assert_eq!(s.latency(), None);
        assert_eq!(s.ok_per_sec(), 0.0);
        assert!(s.to_text().contains("no successful call"));
        assert!(s.to_json().contains("\"latency_ms\":null"));
    }

    #[test]
    fn merge_adds_counts_and_histograms() {
        let mut a = Stats::new();
        a.ok(Duration::from_micros(100));
        a.error("INTERNAL");
        let mut b = Stats::new();
        b.ok(Duration::from_micros(300));
        b.ok(Duration::from_micros(200));
        b.error("INTERNAL");
        b.error("UNAVAILABLE");
        a.merge(&b);
        assert_eq!(a.latency_us.len(), 3);
        assert_eq!(a.latency_us.max(), 300);
        assert_eq!(a.errors.get("INTERNAL"), Some(&2));
        assert_eq!(a.errors.get("UNAVAILABLE"), Some(&1));
    }

    #[test]
    fn text_summary_lists_errors_by_name() {
        let s = summary(
            &[1000, 2000],
            &["UNAVAILABLE", "INTERNAL", "UNAVAILABLE"],
            2,
        );
        let t = s.to_text();
        assert!(t.contains("requests: 5 (2 ok, 3 failed) in 2.00 s"), "{t}");
        assert!(t.contains("errors:   INTERNAL 1, UNAVAILABLE 2"), "{t}");
        assert!(t.contains("req/s:    1.0"), "{t}");
        assert!(t.contains("p50 1.000 ms"), "{t}");
    }

    #[test]
    fn json_summary_is_one_object_with_the_figures() {
        let s = summary(&[1000, 2000], &["UNAVAILABLE"], 2);
        let j = s.to_json();
        assert!(
            j.starts_with('{') && j.ends_with('}') && !j.contains('\n'),
            "{j}"
        );
        for part in [
            "\"addr\":\"http://h:1\"",
            "\"connections\":2",
            "\"streams\":3",
            "\"requests\":3",
            "\"ok\":2",
            "\"failed\":1",
            "\"errors\":{\"UNAVAILABLE\":1}",
            "\"req_per_s\":1.000",
            "\"interrupted\":false",
            "\"max\":2.000",
        ] {
            assert!(j.contains(part), "{part} missing in {j}");
        }
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }

    #[test]
    fn request_bound_hands_out_exactly_n_tickets() {
        let shared = Shared {
            issued: AtomicU64::new(0),
            limit: Some(3),
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            down: AtomicBool::new(false),
        };
        let granted = (0..10).filter(|_| shared.claim()).count();
        assert_eq!(granted, 3);
    }
}
