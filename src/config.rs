//! Server configuration: command-line flags and `ECHO_*` environment
//! variables, parsed into one [`Config`] that both server flavours read.
//!
//! Every option is declared once in [`OPTIONS`]: its flag, environment
//! variable, default and help line. Defaults are parsed by the same code as
//! user input, so `--help` can never disagree with the real default.
//! Precedence: built-in default, then environment, then flags.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::log::Level;

/// The fully resolved server configuration. Every limit lives here, once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Address to listen on (`[::]:50051` accepts IPv4 and IPv6).
    pub listen: SocketAddr,
    /// Largest request message accepted, after the 5-byte gRPC prefix.
    pub max_message_size: usize,
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS advertised per connection.
    pub max_concurrent_streams: u32,
    /// Open connections allowed at once; at the cap a new one takes the slot
    /// of the longest-idle connection without calls, or is refused if every
    /// connection has an open call (see `server::slots`).
    pub max_connections: usize,
    /// Open connections allowed per client IP address; `None` = no cap (the
    /// default: many boards sit behind one NAT address).
    pub max_connections_per_ip: Option<usize>,
    /// Bound on all buffered request message data across connections and
    /// calls (see [`crate::grpc::budget`]); the flow-control windows derive from it.
    pub memory_budget: usize,
    /// HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE: bound on one request's headers.
    pub max_header_list_size: u32,
    /// Interval between server keepalive PINGs on a connection; `None` = off.
    pub keepalive_interval: Option<Duration>,
    /// How long to wait for a keepalive PING ack before closing.
    pub keepalive_timeout: Duration,
    /// Streams the server may reset for client errors per connection per
    /// 10 s (a decaying rate) before it closes the connection (bounds
    /// "local-error reset" floods without cutting off long busy connections).
    pub max_local_resets: usize,
    /// Whether accepted sockets get TCP_NODELAY.
    pub tcp_nodelay: bool,
    /// Time a new connection has to send the HTTP/2 preface and SETTINGS.
    pub handshake_timeout: Duration,
    /// A connection with no open stream for this long is closed with GOAWAY;
    /// `None` = never.
    pub idle_timeout: Option<Duration>,
    /// On SIGINT/SIGTERM, how long in-flight calls may take to finish.
    pub drain_timeout: Duration,
    /// Log level for stderr.
    pub log: Level,
    /// PEM certificate chain to serve TLS with; `None` = plaintext h2c.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`; set exactly when `tls_cert` is.
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates that client certificates must chain to; `Some`
    /// makes TLS mutual (clients without a valid certificate are rejected).
    pub client_ca: Option<PathBuf>,
}

/// What the command line asks for.
// Made once at startup and moved straight into the server: boxing the
// Config would buy nothing but an allocation and a harder API.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Run the server with this configuration.
    Run(Config),
    /// Print [`help`] and exit 0.
    Help,
    /// Print [`version`] and exit 0.
    Version,
}

/// A configuration error, printed as one line before exiting with code 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// One configuration option, declared once: flag, environment variable,
/// default, help line and the parser that stores its value in [`Config`].
/// `--help`, the README table, the systemd unit and the code all follow it.
pub struct Opt {
    /// Long flag name without the dashes.
    pub flag: &'static str,
    /// Environment variable read when the flag is absent.
    pub env: &'static str,
    /// Placeholder shown in `--help`.
    pub value: &'static str,
    /// The default, in the same syntax a user would type.
    pub default: &'static str,
    /// One-line description.
    pub help: &'static str,
    /// Parses a value (already trimmed) into the configuration.
    pub set: fn(&mut Config, &str) -> Result<(), String>,
}

impl fmt::Debug for Opt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opt")
            .field("flag", &self.flag)
            .finish_non_exhaustive()
    }
}

/// Every option the server takes, in `--help` order.
pub const OPTIONS: &[Opt] = &[
    Opt {
        flag: "listen",
        env: "ECHO_LISTEN",
        value: "ADDR",
        default: "[::]:50051",
        help: "address and port to listen on",
        set: |c, v| {
            c.listen = parse_addr(v)?;
            Ok(())
        },
    },
    Opt {
        flag: "max-message-size",
        env: "ECHO_MAX_MESSAGE_SIZE",
        value: "BYTES",
        default: "4MiB",
        help: "largest request message accepted (larger: RESOURCE_EXHAUSTED)",
        set: |c, v| {
            c.max_message_size = bounded(parse_size(v)?, 1, u32::MAX as u64)? as usize;
            Ok(())
        },
    },
    Opt {
        flag: "max-concurrent-streams",
        env: "ECHO_MAX_CONCURRENT_STREAMS",
        value: "N",
        default: "100",
        help: "concurrent calls per connection (HTTP/2 setting)",
        set: |c, v| {
            c.max_concurrent_streams = bounded(parse_u64(v)?, 1, u32::MAX as u64)? as u32;
            Ok(())
        },
    },
    Opt {
        flag: "max-connections",
        env: "ECHO_MAX_CONNECTIONS",
        value: "N",
        default: "256",
        help: "open connections at once; at the cap the longest-idle one without calls gives way",
        set: |c, v| {
            c.max_connections = bounded(parse_u64(v)?, 1, 1 << 20)? as usize;
            Ok(())
        },
    },
    Opt {
        flag: "max-connections-per-ip",
        env: "ECHO_MAX_CONNECTIONS_PER_IP",
        value: "N",
        default: "off",
        help: "open connections per client address, or 'off'",
        set: |c, v| {
            c.max_connections_per_ip = match v.to_ascii_lowercase().as_str() {
                "off" | "none" | "0" => None,
                _ => Some(bounded(parse_u64(v)?, 1, 1 << 20)? as usize),
            };
            Ok(())
        },
    },
    Opt {
        flag: "memory-budget",
        env: "ECHO_MEMORY_BUDGET",
        value: "BYTES",
        default: "32MiB",
        help: "bound on all buffered message data; windows derive from it",
        set: |c, v| {
            c.memory_budget = bounded(parse_size(v)?, 1 << 20, 1 << 40)? as usize;
            Ok(())
        },
    },
    Opt {
        flag: "max-header-list-size",
        env: "ECHO_MAX_HEADER_LIST_SIZE",
        value: "BYTES",
        default: "16KiB",
        help: "bound on one request's header block (HTTP/2 setting)",
        set: |c, v| {
            c.max_header_list_size = bounded(parse_size(v)?, 1024, 16 << 20)? as u32;
            Ok(())
        },
    },
    Opt {
        flag: "keepalive-interval",
        env: "ECHO_KEEPALIVE_INTERVAL",
        value: "DURATION",
        default: "2h",
        help: "server PING interval on a connection, or 'off'",
        set: |c, v| {
            c.keepalive_interval = parse_optional_duration(v)?;
            Ok(())
        },
    },
    Opt {
        flag: "keepalive-timeout",
        env: "ECHO_KEEPALIVE_TIMEOUT",
        value: "DURATION",
        default: "20s",
        help: "close a connection whose PING is not acked in time",
        set: |c, v| {
            c.keepalive_timeout = parse_duration(v)?;
            Ok(())
        },
    },
    Opt {
        flag: "max-local-resets",
        env: "ECHO_MAX_LOCAL_RESETS",
        value: "N",
        default: "1024",
        help: "streams reset for client errors per 10 s before the connection is closed",
        set: |c, v| {
            c.max_local_resets = bounded(parse_u64(v)?, 1, 1 << 20)? as usize;
            Ok(())
        },
    },
    Opt {
        flag: "tcp-nodelay",
        env: "ECHO_TCP_NODELAY",
        value: "BOOL",
        default: "true",
        help: "set TCP_NODELAY on accepted sockets",
        set: |c, v| {
            c.tcp_nodelay = parse_bool(v)?;
            Ok(())
        },
    },
    Opt {
        flag: "handshake-timeout",
        env: "ECHO_HANDSHAKE_TIMEOUT",
        value: "DURATION",
        default: "10s",
        help: "time a new connection has to complete the HTTP/2 preface (more than 0)",
        set: |c, v| {
            c.handshake_timeout = parse_positive_duration(v)?;
            Ok(())
        },
    },
    Opt {
        flag: "idle-timeout",
        env: "ECHO_IDLE_TIMEOUT",
        value: "DURATION",
        default: "5m",
        help: "close a connection with no calls for this long, or 'off'",
        set: |c, v| {
            c.idle_timeout = parse_optional_duration(v)?;
            Ok(())
        },
    },
    Opt {
        flag: "drain-timeout",
        env: "ECHO_DRAIN_TIMEOUT",
        value: "DURATION",
        default: "10s",
        help: "on SIGINT/SIGTERM, time given to in-flight calls",
        set: |c, v| {
            c.drain_timeout = parse_duration(v)?;
            Ok(())
        },
    },
    Opt {
        flag: "log",
        env: "ECHO_LOG",
        value: "LEVEL",
        default: "info",
        help: "stderr log level: off, error, warn, info, debug",
        set: |c, v| {
            c.log = v.parse()?;
            Ok(())
        },
    },
    Opt {
        flag: "tls-cert",
        env: "ECHO_TLS_CERT",
        value: "FILE",
        default: "",
        help: "PEM certificate chain: serve h2 over TLS (needs --tls-key; empty = plaintext)",
        set: |c, v| {
            c.tls_cert = parse_path(v);
            Ok(())
        },
    },
    Opt {
        flag: "tls-key",
        env: "ECHO_TLS_KEY",
        value: "FILE",
        default: "",
        help: "PEM private key for --tls-cert",
        set: |c, v| {
            c.tls_key = parse_path(v);
            Ok(())
        },
    },
    Opt {
        flag: "client-ca",
        env: "ECHO_CLIENT_CA",
        value: "FILE",
        default: "",
        help: "PEM CA(s): require client certificates signed by them (mutual TLS)",
        set: |c, v| {
            c.client_ca = parse_path(v);
            Ok(())
        },
    },
];

impl Default for Config {
    fn default() -> Config {
        let mut config = Config {
            listen: SocketAddr::from(([0u16; 8], 50051)),
            max_message_size: 0,
            max_concurrent_streams: 0,
            max_connections: 0,
            max_connections_per_ip: None,
            memory_budget: 0,
            max_header_list_size: 0,
            keepalive_interval: None,
            keepalive_timeout: Duration::ZERO,
            max_local_resets: 0,
            tcp_nodelay: false,
            handshake_timeout: Duration::ZERO,
            idle_timeout: None,
            drain_timeout: Duration::ZERO,
            log: Level::Info,
            tls_cert: None,
            tls_key: None,
            client_ca: None,
        };
        for opt in OPTIONS {
            // The defaults are constants tested by `defaults_parse`; a failure here is a bug.
            config
                .set(opt.flag, opt.default)
                .expect("built-in default must parse");
        }
        config
    }
}

#[cfg(feature = "runtime-free")]
impl Config {
    /// The HTTP/2 core's limits this configuration asks for.
    pub fn h2_limits(&self) -> crate::h2::Limits {
        crate::h2::Limits {
            max_concurrent_streams: self.max_concurrent_streams,
            max_header_list_size: self.max_header_list_size,
            max_local_resets: self.max_local_resets,
            handshake_timeout: self.handshake_timeout,
            idle_timeout: self.idle_timeout,
            keepalive_interval: self.keepalive_interval,
            keepalive_timeout: self.keepalive_timeout,
            // The memory budget's per-stream and per-connection window.
            initial_window_size: self
                .memory_plan()
                .ok()
                .and_then(|plan| u32::try_from(plan.window).ok())
                .unwrap_or(crate::h2::DEFAULT_WINDOW),
            max_frame_size: crate::h2::settings::DEFAULT_MAX_FRAME_SIZE,
        }
    }

    /// The gRPC session's limits (HTTP/2 ones included) this configuration asks for.
    pub fn session_limits(&self) -> crate::grpc::session::Limits {
        crate::grpc::session::Limits {
            h2: self.h2_limits(),
            max_recv_message_size: self.max_message_size,
            // As the tokio flavour: a reply may exceed the request bound by
            // "You said: " plus a length-prefix byte, rounded up.
            max_send_message_size: self
                .max_message_size
                .saturating_add(crate::service::REPLY_SLACK),
            memory_pool: self.memory_plan().map_or(self.memory_budget, |p| p.pool),
        }
    }
}

#[cfg(feature = "runtime-free")]
impl Default for crate::h2::Limits {
    /// The limits of the default configuration.
    fn default() -> crate::h2::Limits {
        Config::default().h2_limits()
    }
}

impl Config {
    /// Parses `args` (without the program name) and the environment, read
    /// through `env`, into a [`Command`].
    pub fn parse<I, E>(args: I, env: E) -> Result<Command, ConfigError>
    where
        I: IntoIterator,
        I::Item: Into<OsString>,
        E: Fn(&str) -> Option<String>,
    {
        // The environment first (flags win over it); an invalid variable is
        // reported only after the flags, so `--help` and `--version` work
        // whatever the environment holds.
        let mut config = Config::default();
        let mut env_error = None;
        for opt in OPTIONS {
            if let Some(value) = env(opt.env) {
                if let Err(e) = config.set(opt.flag, &value) {
                    env_error.get_or_insert(ConfigError(format!("{}: {e}", opt.env)));
                }
            }
        }
        let mut parser = lexopt::Parser::from_args(args);
        while let Some(arg) = parser.next().map_err(|e| ConfigError(e.to_string()))? {
            match arg {
                lexopt::Arg::Short('h') | lexopt::Arg::Long("help") => return Ok(Command::Help),
                lexopt::Arg::Short('V') | lexopt::Arg::Long("version") => {
                    return Ok(Command::Version)
                }
                lexopt::Arg::Long(name) => {
                    let name = name.to_owned();
                    if !OPTIONS.iter().any(|o| o.flag == name) {
                        return Err(ConfigError(format!(
                            "unknown option '--{name}' (see --help)"
                        )));
                    }
                    let value = parser
                        .value()
                        .map_err(|e| ConfigError(e.to_string()))?
                        .into_string()
                        .map_err(|_| ConfigError(format!("--{name}: value is not valid UTF-8")))?;
                    config
                        .set(&name, &value)
                        .map_err(|e| ConfigError(format!("--{name}: {e}")))?;
                }
                other => return Err(ConfigError(other.unexpected().to_string())),
            }
        }
        if let Some(e) = env_error {
            return Err(e);
        }
        config.check_tls()?;
        config.memory_plan()?;
        Ok(Command::Run(config))
    }

    /// Checks that the TLS options form a usable whole, and that this build
    /// can serve TLS at all.
    fn check_tls(&self) -> Result<(), ConfigError> {
        let any = self.tls_cert.is_some() || self.tls_key.is_some() || self.client_ca.is_some();
        if any && !cfg!(feature = "tls") {
            return Err(ConfigError(
                "--tls-cert/--tls-key/--client-ca: this echo-server was built without TLS; \
                 rebuild with --features tls"
                    .into(),
            ));
        }
        match (&self.tls_cert, &self.tls_key, &self.client_ca) {
            (Some(_), None, _) => Err(ConfigError("--tls-cert needs --tls-key".into())),
            (None, Some(_), _) => Err(ConfigError("--tls-key needs --tls-cert".into())),
            (None, None, Some(_)) => Err(ConfigError(
                "--client-ca needs --tls-cert and --tls-key (mutual TLS is TLS)".into(),
            )),
            _ => Ok(()),
        }
    }

    /// How `memory_budget` is split between flow-control windows and the
    /// shared pool; `Err` is the one line saying which option to change.
    pub fn memory_plan(&self) -> Result<crate::grpc::budget::Plan, ConfigError> {
        crate::grpc::budget::Plan::new(
            self.memory_budget,
            self.max_connections,
            self.max_message_size,
        )
        .map_err(ConfigError)
    }

    /// Parses the process's own arguments and environment.
    pub fn from_env() -> Result<Command, ConfigError> {
        Config::parse(std::env::args_os().skip(1), |k| std::env::var(k).ok())
    }

    /// Sets one option from its textual value, with the option's own parser.
    fn set(&mut self, flag: &str, v: &str) -> Result<(), String> {
        let opt = OPTIONS
            .iter()
            .find(|o| o.flag == flag)
            .ok_or_else(|| format!("unknown option '{flag}'"))?;
        (opt.set)(self, v.trim())
    }

    /// A one-line summary of the limits, for the startup log line.
    pub fn summary(&self) -> String {
        format!(
            "max-message-size={} max-concurrent-streams={} max-connections={} \
             max-connections-per-ip={} memory-budget={} max-header-list-size={} keepalive={}/{} max-local-resets={} tcp-nodelay={} \
             handshake-timeout={} idle-timeout={} drain-timeout={} tls={}",
            self.max_message_size,
            self.max_concurrent_streams,
            self.max_connections,
            self.max_connections_per_ip
                .map_or_else(|| "off".into(), |n| n.to_string()),
            self.memory_budget,
            self.max_header_list_size,
            show_optional(self.keepalive_interval),
            show_duration(self.keepalive_timeout),
            self.max_local_resets,
            self.tcp_nodelay,
            show_duration(self.handshake_timeout),
            show_optional(self.idle_timeout),
            show_duration(self.drain_timeout),
            match (&self.tls_cert, &self.client_ca) {
                (None, _) => "off",
                (Some(_), None) => "on",
                (Some(_), Some(_)) => "mutual",
            },
        )
    }
}

/// The `--help` text, generated from [`OPTIONS`].
pub fn help() -> String {
    let mut s = format!(
        "echo-server {} ({} build): a lean gRPC server for echo.Echo/Reply\n\n\
         Usage: echo-server [OPTIONS]\n\n\
         Options (flags win over environment variables):\n",
        crate::VERSION,
        crate::FLAVOUR
    );
    for o in OPTIONS {
        let flag = format!("--{} {}", o.flag, o.value);
        s.push_str(&format!(
            "  {flag:<34} {}\n  {:<34} [env: {}] [default: {}]\n",
            o.help, "", o.env, o.default
        ));
    }
    s.push_str(
        "  -h, --help                         print this help\n\
         \x20 -V, --version                      print version and build flavour\n\n\
         Sizes take B, KiB, MiB or GiB suffixes (K = KiB, M = MiB; KB and MB are refused as\n\
         ambiguous); durations take ms, s, m or h (a bare number is seconds).\n\
         SIGINT/SIGTERM drain in-flight calls, then exit 0.\n",
    );
    s
}

/// The `--version` line.
pub fn version() -> String {
    format!("echo-server {} ({})", crate::VERSION, crate::FLAVOUR)
}

fn parse_addr(v: &str) -> Result<SocketAddr, String> {
    v.parse().map_err(|_| {
        format!("'{v}' is not a socket address (expected e.g. 0.0.0.0:50051 or [::]:50051)")
    })
}

fn parse_u64(v: &str) -> Result<u64, String> {
    v.replace('_', "")
        .parse()
        .map_err(|_| format!("'{v}' is not a whole number"))
}

fn bounded(n: u64, min: u64, max: u64) -> Result<u64, String> {
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(format!("{n} is out of range ({min}..={max})"))
    }
}

/// Parses `4194304`, `4MiB`, `4M`, `16KiB`, `512B` (binary units).
pub fn parse_size(v: &str) -> Result<u64, String> {
    let split = v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        // 4MB could mean 4,000,000 or 4,194,304 bytes: say so rather than guess.
        "kb" | "mb" | "gb" => {
            return Err(format!(
                "'{v}' is ambiguous: write {}iB (1024-based) or the number of bytes",
                &v[..v.len() - 1]
            ));
        }
        _ => {
            return Err(format!(
                "'{v}' has an unknown size unit (use B, KiB, MiB or GiB)"
            ))
        }
    };
    let n = parse_u64(num.trim()).map_err(|_| format!("'{v}' is not a size (e.g. 4MiB)"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{v}' is too large"))
}

/// Parses `500ms`, `10s`, `5m`, `2h`, or a bare number of seconds.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let split = v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n = parse_u64(num.trim()).map_err(|_| format!("'{v}' is not a duration (e.g. 10s)"))?;
    let ms = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" | "min" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => {
            return Err(format!(
                "'{v}' has an unknown duration unit (use ms, s, m or h)"
            ))
        }
    };
    ms.map(Duration::from_millis)
        .ok_or_else(|| format!("'{v}' is too long"))
}

/// Like [`parse_duration`], but 0 is an error (a timeout of nothing would
/// close every connection at once; `off` is not offered).
pub fn parse_positive_duration(v: &str) -> Result<Duration, String> {
    match parse_duration(v)? {
        d if d.is_zero() => Err(format!("'{v}' must be more than 0")),
        d => Ok(d),
    }
}

/// Like [`parse_duration`], but `off`, `none` or `0` mean "disabled".
pub fn parse_optional_duration(v: &str) -> Result<Option<Duration>, String> {
    match v.to_ascii_lowercase().as_str() {
        "off" | "none" | "never" => Ok(None),
        _ => parse_duration(v).map(|d| Some(d).filter(|d| !d.is_zero())),
    }
}

/// An empty value means "not set".
fn parse_path(v: &str) -> Option<PathBuf> {
    (!v.is_empty()).then(|| PathBuf::from(v))
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("'{v}' is not a boolean (true or false)")),
    }
}

/// Formats a duration the way the options take it (`10s`, `500ms`, `2h`).
pub fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn show_optional(d: Option<Duration>) -> String {
    d.map_or_else(|| "off".into(), show_duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Command, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::parse(args.iter().copied(), |k| env.get(k).cloned())
    }

    fn run(args: &[&str], env: &[(&str, &str)]) -> Config {
        match parse(args, env) {
            Ok(Command::Run(c)) => c,
            other => panic!("expected a config, got {other:?}"),
        }
    }

    #[test]
    fn defaults_parse() {
        let c = run(&[], &[]);
        assert_eq!(c.listen, "[::]:50051".parse().unwrap());
        assert_eq!(c.max_message_size, 4 << 20);
        assert_eq!(c.max_concurrent_streams, 100);
        assert_eq!(c.max_connections, 256);
        assert_eq!(c.max_header_list_size, 16 << 10);
        assert_eq!(c.keepalive_interval, Some(Duration::from_secs(7200)));
        assert_eq!(c.max_local_resets, 1024);
        assert!(c.tcp_nodelay);
        assert_eq!(c.idle_timeout, Some(Duration::from_secs(300)));
        assert_eq!(c.log, Level::Info);
    }

    #[test]
    fn flags_win_over_env() {
        let c = run(
            &["--listen", "127.0.0.1:1234"],
            &[
                ("ECHO_LISTEN", "127.0.0.1:9"),
                ("ECHO_MAX_CONNECTIONS", "3"),
            ],
        );
        assert_eq!(c.listen, "127.0.0.1:1234".parse().unwrap());
        assert_eq!(c.max_connections, 3);
        assert_eq!(run(&[], &[]).max_connections_per_ip, None);
        let c = run(
            &["--max-connections-per-ip", "4"],
            &[("ECHO_MAX_CONNECTIONS_PER_IP", "2")],
        );
        assert_eq!(c.max_connections_per_ip, Some(4));
        let c = run(&[], &[("ECHO_MAX_CONNECTIONS_PER_IP", "off")]);
        assert_eq!(c.max_connections_per_ip, None);
    }

    #[test]
    fn equals_form_and_units() {
        let c = run(
            &[
                "--max-message-size=1KiB",
                "--drain-timeout",
                "250ms",
                "--keepalive-interval=off",
            ],
            &[],
        );
        assert_eq!(c.max_message_size, 1024);
        assert_eq!(c.drain_timeout, Duration::from_millis(250));
        assert_eq!(c.keepalive_interval, None);
    }

    #[test]
    fn errors_name_the_option() {
        let e = parse(&["--listen", "nowhere"], &[]).unwrap_err();
        assert!(
            e.0.starts_with("--listen: 'nowhere' is not a socket address"),
            "{e}"
        );
        let e = parse(&[], &[("ECHO_MAX_CONCURRENT_STREAMS", "0")]).unwrap_err();
        assert!(
            e.0.starts_with("ECHO_MAX_CONCURRENT_STREAMS: 0 is out of range"),
            "{e}"
        );
        let e = parse(&["--bogus", "1"], &[]).unwrap_err();
        assert!(e.0.contains("unknown option '--bogus'"), "{e}");
        let e = parse(&["--listen"], &[]).unwrap_err();
        assert!(e.0.contains("missing argument"), "{e}");
        let e = parse(&["stray"], &[]).unwrap_err();
        assert!(e.0.contains("stray"), "{e}");
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse(&["--help"], &[]), Ok(Command::Help));
        assert_eq!(parse(&["-V"], &[]), Ok(Command::Version));
        let h = help();
        for o in OPTIONS {
            assert!(h.contains(&format!("--{} ", o.flag)), "{}", o.flag);
            assert!(h.contains(o.env));
        }
        assert!(version().contains(crate::FLAVOUR));
    }

    #[test]
    fn help_and_version_work_with_a_bad_environment() {
        let bad = [("ECHO_MAX_CONNECTIONS", "lots")];
        assert_eq!(parse(&["--help"], &bad), Ok(Command::Help));
        assert_eq!(parse(&["--version"], &bad), Ok(Command::Version));
        let e = parse(&[], &bad).unwrap_err();
        assert!(e.0.starts_with("ECHO_MAX_CONNECTIONS: "), "{e}");
        // A bad environment value is still an error when a flag sets the option.
        assert!(parse(&["--max-connections", "5"], &bad).is_err());
    }

    #[test]
    fn handshake_timeout_must_be_positive() {
        for zero in ["0", "0s", "0ms"] {
            let e = parse(&["--handshake-timeout", zero], &[]).unwrap_err();
            assert!(e.0.contains("must be more than 0"), "{e}");
        }
        let c = run(&["--handshake-timeout", "1ms"], &[]);
        assert_eq!(c.handshake_timeout, Duration::from_millis(1));
    }

    #[test]
    fn si_looking_size_units_are_refused() {
        for (v, hint) in [("4MB", "4MiB"), ("16kb", "16kiB"), ("1GB", "1GiB")] {
            let e = parse_size(v).unwrap_err();
            assert!(e.contains("ambiguous") && e.contains(hint), "{v}: {e}");
        }
        let e = parse(&["--max-message-size", "4MB"], &[]).unwrap_err();
        assert!(
            e.0.starts_with("--max-message-size: '4MB' is ambiguous"),
            "{e}"
        );
        assert_eq!(parse_size("4M"), Ok(4 << 20));
        assert_eq!(parse_size("4mib"), Ok(4 << 20));
    }

    #[test]
    fn every_option_has_a_parser_that_accepts_its_default() {
        for o in OPTIONS {
            let mut c = Config::default();
            assert_eq!((o.set)(&mut c, o.default), Ok(()), "--{}", o.flag);
            assert_eq!(c, Config::default(), "--{} default", o.flag);
        }
    }

    #[test]
    fn a_budget_the_limits_cannot_fit_is_one_clear_line() {
        assert_eq!(run(&[], &[]).memory_budget, 32 << 20);
        let e = parse(&["--memory-budget", "8MiB"], &[]).unwrap_err();
        assert!(e.0.contains("raise --memory-budget"), "{e}");
        let c = run(&["--memory-budget", "9MiB", "--max-connections", "16"], &[]);
        assert_eq!(c.memory_budget, 9 << 20);
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("16k"), Ok(16 << 10));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("4XB").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3d").is_err());
        assert_eq!(parse_optional_duration("0"), Ok(None));
        assert_eq!(show_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(show_duration(Duration::from_secs(120)), "2m");
    }

    #[test]
    fn tls_options_come_in_pairs() {
        let tls_errors = [
            (vec!["--tls-cert", "c.pem"], "--tls-cert needs --tls-key"),
            (vec!["--tls-key", "k.pem"], "--tls-key needs --tls-cert"),
            (
                vec!["--client-ca", "ca.pem"],
                "--client-ca needs --tls-cert",
            ),
        ];
        for (args, want) in tls_errors {
            let e = parse(&args, &[]).unwrap_err();
            if cfg!(feature = "tls") {
                assert!(e.0.starts_with(want), "{args:?}: {e}");
            } else {
                assert!(e.0.contains("built without TLS"), "{args:?}: {e}");
            }
        }
        // Empty means off, from flags and from the environment.
        let c = run(&["--tls-cert", ""], &[("ECHO_TLS_KEY", "")]);
        assert_eq!((c.tls_cert, c.tls_key, c.client_ca), (None, None, None));
        assert!(Config::default().summary().ends_with("tls=off"));
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_options_from_env_and_flags() {
        let c = run(
            &["--client-ca", "/ca.pem"],
            &[("ECHO_TLS_CERT", "/c.pem"), ("ECHO_TLS_KEY", "/k.pem")],
        );
        assert_eq!(c.tls_cert, Some(PathBuf::from("/c.pem")));
        assert_eq!(c.tls_key, Some(PathBuf::from("/k.pem")));
        assert_eq!(c.client_ca, Some(PathBuf::from("/ca.pem")));
        assert!(c.summary().ends_with("tls=mutual"));
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_options_need_the_tls_build() {
        let e = parse(&["--tls-cert", "c", "--tls-key", "k"], &[]).unwrap_err();
        assert!(e.0.ends_with("rebuild with --features tls"), "{e}");
    }

    #[test]
    fn summary_mentions_limits() {
        let s = Config::default().summary();
        assert!(s.contains("max-message-size=4194304"));
        assert!(s.contains("keepalive=2h/20s"));
    }
}
