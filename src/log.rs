//! A tiny leveled logger writing one line per event to stderr.
//!
//! systemd's journal captures stderr and adds its own timestamps, so lines
//! carry only a level and the text. A dependency-free logger keeps the
//! runtime-free binary small; the level is process-global and set once at
//! startup from `--log` / `ECHO_LOG`.

use std::fmt;
use std::io::Write;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

/// How much the server says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Nothing at all.
    Off = 0,
    /// Failures that stop the server or a connection.
    Error = 1,
    /// Bad input from clients, refused connections.
    Warn = 2,
    /// Startup and shutdown (the default).
    Info = 3,
    /// Per-connection events.
    Debug = 4,
}

impl Level {
    /// The lower-case name used by `--log`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Off => "off",
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Level, String> {
        match s.to_ascii_lowercase().as_str() {
            "off" => Ok(Level::Off),
            "error" => Ok(Level::Error),
            "warn" | "warning" => Ok(Level::Warn),
            "info" => Ok(Level::Info),
            "debug" => Ok(Level::Debug),
            _ => Err(format!(
                "unknown log level '{s}' (expected off, error, warn, info or debug)"
            )),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// Sets the process-wide level.
pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether events at `level` are printed.
pub fn enabled(level: Level) -> bool {
    level != Level::Off && level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes one line at `level`, if enabled. Use the macros instead.
pub fn write(level: Level, args: fmt::Arguments<'_>) {
    if enabled(level) {
        write_always(level, args);
    }
}

/// Writes one line at `level` whatever the log level: for the one line that
/// says why the server stops (printed even with `--log off`).
pub fn write_always(level: Level, args: fmt::Arguments<'_>) {
    // A failed write to stderr has nowhere to be reported; dropping it is right.
    let _ = writeln!(std::io::stderr().lock(), "{level}: {args}");
}

/// Logs at error level: `error!("bind failed: {e}")`.
#[macro_export]
macro_rules! error {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Error, format_args!($($t)*)) };
}

/// Logs at warn level.
#[macro_export]
macro_rules! warn {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Warn, format_args!($($t)*)) };
}

/// Logs at info level.
#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Info, format_args!($($t)*)) };
}

/// Logs at debug level.
#[macro_export]
macro_rules! debug {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Debug, format_args!($($t)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_levels() {
        assert_eq!("INFO".parse::<Level>(), Ok(Level::Info));
        assert_eq!("warning".parse::<Level>(), Ok(Level::Warn));
        assert!("loud".parse::<Level>().is_err());
    }
}
