//! Board telemetry (`telemetry.Telemetry/Watch`, cargo feature `telemetry`):
//! the request rules of `proto/telemetry.proto` and the readings, as plain
//! functions both flavours call.
//!
//! A flavour checks the request with [`watch_plan`], then for each reading
//! waits the plan's interval on its own timer and calls [`Board::sample`]
//! with the sequence number and the wall-clock time it read: this module
//! starts no timer and reads no clock.
//!
//! Readings come from Linux's `/proc` and `/sys` text files. A board that
//! lacks one (no thermal zone, a container without `/proc/meminfo`) still
//! gets readings: the field stays absent or zero, as the schema says.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::proto::telemetry::{Reading, WatchRequest};
use crate::status::Code;

/// Fully-qualified name of the served service.
pub const SERVICE: &str = "telemetry.Telemetry";

/// Interval used when a request asks for 0.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(1000);
/// Shortest interval a request may ask for.
pub const MIN_INTERVAL_MS: u32 = 100;
/// Longest interval a request may ask for (one hour).
pub const MAX_INTERVAL_MS: u32 = 3_600_000;

/// What one `Watch` call sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchPlan {
    /// Time between readings (the first is sent at once).
    pub interval: Duration,
    /// Readings to send; `None` = until the client cancels.
    pub count: Option<u32>,
}

impl WatchPlan {
    /// Whether reading number `seq` (1-based) is past the end.
    pub fn is_done(&self, seq: u64) -> bool {
        self.count.is_some_and(|n| seq > u64::from(n))
    }
}

/// Checks a `WatchRequest`: `interval_ms` 0 means [`DEFAULT_INTERVAL`],
/// otherwise it must be within [`MIN_INTERVAL_MS`]..=[`MAX_INTERVAL_MS`]
/// (INVALID_ARGUMENT with the reason if not); `count` 0 means no end.
pub fn watch_plan(request: &WatchRequest) -> Result<WatchPlan, (Code, String)> {
    let interval = match request.interval_ms {
        0 => DEFAULT_INTERVAL,
        ms if (MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&ms) => {
            Duration::from_millis(u64::from(ms))
        }
        ms => {
            return Err((
                Code::InvalidArgument,
                format!(
                    "interval_ms {ms} is outside {MIN_INTERVAL_MS}..={MAX_INTERVAL_MS} (0 = 1000)"
                ),
            ))
        }
    };
    let count = (request.count != 0).then_some(request.count);
    Ok(WatchPlan { interval, count })
}

/// Where the board's readings come from: a root directory holding `proc/`
/// and `sys/` (`/` on a real board; a fixture directory in tests).
#[derive(Clone, Debug)]
pub struct Board {
    root: PathBuf,
}

impl Board {
    /// The running system's `/proc` and `/sys`.
    pub fn system() -> Board {
        Board::at("/")
    }

    /// `proc/` and `sys/` under `root`.
    pub fn at(root: impl Into<PathBuf>) -> Board {
        Board { root: root.into() }
    }

    /// One reading, numbered `seq` and stamped `unix_time_ms` (both from the
    /// caller). Files that are missing or unreadable leave their fields
    /// absent (temperature) or zero.
    pub fn sample(&self, seq: u64, unix_time_ms: u64) -> Reading {
        let text = |path: &str| fs::read_to_string(self.root.join(path)).ok();
        let (load1, load5, load15) = text("proc/loadavg")
            .and_then(|t| parse_loadavg(&t))
            .unwrap_or_default();
        let (mem_total_bytes, mem_available_bytes) = text("proc/meminfo")
            .map(|t| parse_meminfo(&t))
            .unwrap_or_default();
        Reading {
            seq,
            unix_time_ms,
            cpu_temp_celsius: hottest_zone(&self.root.join("sys/class/thermal")),
            load1,
            load5,
            load15,
            mem_total_bytes,
            mem_available_bytes,
            uptime_seconds: text("proc/uptime")
                .and_then(|t| parse_uptime(&t))
                .unwrap_or_default(),
        }
    }
}

/// The three load averages of `/proc/loadavg` (`0.42 0.30 0.25 1/123 4567`).
pub fn parse_loadavg(text: &str) -> Option<(f32, f32, f32)> {
    let mut fields = text.split_ascii_whitespace().map(str::parse::<f32>);
    match (fields.next(), fields.next(), fields.next()) {
        (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => Some((a, b, c)),
        _ => None,
    }
}

/// `MemTotal` and `MemAvailable` of `/proc/meminfo`, in bytes (the file
/// says kB, meaning KiB); a missing line reads as 0.
pub fn parse_meminfo(text: &str) -> (u64, u64) {
    let kib = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|rest| rest.split_ascii_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |k| k.saturating_mul(1024))
    };
    (kib("MemTotal"), kib("MemAvailable"))
}

/// Seconds since boot: the first field of `/proc/uptime`.
pub fn parse_uptime(text: &str) -> Option<f64> {
    text.split_ascii_whitespace().next()?.parse().ok()
}

/// The hottest `thermal_zone*/temp` under `dir`, in °C (the files hold
/// millidegrees). `None` when there is no readable zone.
pub fn hottest_zone(dir: &Path) -> Option<f32> {
    fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("thermal_zone"))
        .filter_map(|e| fs::read_to_string(e.path().join("temp")).ok())
        .filter_map(|t| t.trim().parse::<i64>().ok())
        .max()
        .map(|milli| milli as f32 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_defaults_and_limits() {
        let ask = |interval_ms, count| watch_plan(&WatchRequest { interval_ms, count });
        assert_eq!(
            ask(0, 0),
            Ok(WatchPlan {
                interval: DEFAULT_INTERVAL,
                count: None
            })
        );
        assert_eq!(
            ask(MIN_INTERVAL_MS, 3),
            Ok(WatchPlan {
                interval: Duration::from_millis(100),
                count: Some(3)
            })
        );
        assert!(ask(MAX_INTERVAL_MS, 1).is_ok());
        for bad in [1, MIN_INTERVAL_MS - 1, MAX_INTERVAL_MS + 1] {
            assert_eq!(ask(bad, 1).map_err(|e| e.0), Err(Code::InvalidArgument));
        }
        let plan = ask(0, 2).expect("ok");
        assert!(!plan.is_done(2) && plan.is_done(3));
        let endless = ask(0, 0).expect("ok");
        assert!(!endless.is_done(u64::MAX));
    }

    #[test]
    fn parses_proc_files() {
        assert_eq!(
            parse_loadavg("0.52 0.58 0.59 1/389 12345\n"),
            Some((0.52, 0.58, 0.59))
        );
        assert_eq!(parse_loadavg("0.52 x"), None);
        let meminfo =
            "MemTotal:        3884136 kB\nMemFree:          123 kB\nMemAvailable:    2000000 kB\n";
        assert_eq!(parse_meminfo(meminfo), (3_884_136 * 1024, 2_000_000 * 1024));
        assert_eq!(parse_meminfo("MemTotal: 10 kB\n"), (10 * 1024, 0));
        assert_eq!(parse_uptime("12345.67 54321.00\n"), Some(12345.67));
        assert_eq!(parse_uptime(""), None);
    }

    /// A fake board root with two thermal zones and the /proc files.
    fn fixture(name: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("lean-grpc-telemetry-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for (zone, milli) in [("thermal_zone0", "41500\n"), ("thermal_zone1", "56250\n")] {
            let dir = root.join("sys/class/thermal").join(zone);
            fs::create_dir_all(&dir).expect("mkdir");
            fs::write(dir.join("temp"), milli).expect("write temp");
        }
        // Not a zone: ignored even though it is hotter.
        let cooling = root.join("sys/class/thermal/cooling_device0");
        fs::create_dir_all(&cooling).expect("mkdir");
        fs::write(cooling.join("temp"), "99000\n").expect("write");
        fs::create_dir_all(root.join("proc")).expect("mkdir");
        fs::write(root.join("proc/loadavg"), "1.00 0.50 0.25 2/100 42\n").expect("write");
        fs::write(
            root.join("proc/meminfo"),
            "MemTotal: 1000 kB\nMemAvailable: 600 kB\n",
        )
        .expect("write");
        fs::write(root.join("proc/uptime"), "360.50 700.00\n").expect("write");
        root
    }

    #[test]
    fn samples_a_board() {
        let root = fixture("full");
        let reading = Board::at(&root).sample(7, 1_700_000_000_000);
        let _ = fs::remove_dir_all(&root);
        assert_eq!(
            reading,
            Reading {
                seq: 7,
                unix_time_ms: 1_700_000_000_000,
                cpu_temp_celsius: Some(56.25),
                load1: 1.0,
                load5: 0.5,
                load15: 0.25,
                mem_total_bytes: 1000 * 1024,
                mem_available_bytes: 600 * 1024,
                uptime_seconds: 360.5,
            }
        );
    }

    #[test]
    fn a_board_without_files_still_reads() {
        let root =
            std::env::temp_dir().join(format!("lean-grpc-telemetry-none-{}", std::process::id()));
        let reading = Board::at(&root).sample(1, 5);
        assert_eq!(
            reading,
            Reading {
                seq: 1,
                unix_time_ms: 5,
                ..Reading::default()
            }
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_machine_has_proc() {
        // The test machine is Linux: the real files parse.
        let reading = Board::system().sample(1, 0);
        assert!(reading.mem_total_bytes > 0, "{reading:?}");
        assert!(reading.uptime_seconds > 0.0, "{reading:?}");
    }
}
