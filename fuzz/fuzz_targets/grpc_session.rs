//! Fuzz target: a whole gRPC `lean_grpc::grpc::session::Session` (the HTTP/2
//! core, calls, Echo, Health and reflection) with a fuzzed client, driven
//! like the readiness-loop driver drives it.
//!
//! Input layout: as the `connection` target (see `common`): a configuration
//! byte (message bound, stream limit, keepalive; bit 7 set: no automatic
//! preface), control bytes (chunk size + action: clock steps, `shutdown()`,
//! EOF, skip a flush), then the client bytes.
//!
//! Checked: no panic; every `poll_transmit` result is a well-formed frame
//! sequence whose header blocks decode with a client-side HPACK decoder;
//! each result is bounded, and so is the total against the input; after a GOAWAY with an error code the session is
//! closed once flushed and writes nothing more.

#![no_main]

use std::rc::Rc;

use lean_grpc::config::Config;
use lean_grpc::grpc::services;
use lean_grpc::grpc::session::Session;
use lean_grpc::h2::Timestamp;
use libfuzzer_sys::fuzz_target;

mod common;
use common::{chunk_size, peer_max_frame, Input, OutputChecker, LARGE_STEPS, SMALL_STEPS};

fn config(c: u8) -> Config {
    let d = Config::default();
    Config {
        max_message_size: [4 * 1024 * 1024, 0, 16, 1024][usize::from(c & 3)],
        max_concurrent_streams: [100, 1, 2, 0][usize::from((c >> 2) & 3)],
        max_local_resets: [100, 1][usize::from((c >> 4) & 1)],
        keepalive_interval: (c & 0x20 != 0)
            .then_some(std::time::Duration::from_secs(5))
            .or(d.keepalive_interval),
        idle_timeout: (c & 0x40 != 0)
            .then_some(std::time::Duration::from_secs(30))
            .or(d.idle_timeout),
        ..d
    }
}

/// Output allowed per input byte: a reflection request of a few dozen bytes
/// may be answered with a descriptor of about a kilobyte (measured: ~45x).
const AMPLIFICATION: usize = 256;

fn transmit(s: &mut Session, out: &mut OutputChecker, input: usize, clock_steps: usize) -> usize {
    let was_closed = s.is_closed();
    let mut buf = Vec::new();
    s.poll_transmit(&mut buf);
    if was_closed {
        assert!(buf.is_empty(), "a closed session wrote {} bytes", buf.len());
    }
    out.push(&buf);
    let bound = 64 * 1024 + AMPLIFICATION * input + 64 * clock_steps;
    assert!(
        out.total <= bound,
        "output {} over the bound {bound} (input {input}, clock steps {clock_steps})",
        out.total
    );
    if out.error_goaway {
        assert!(s.is_closed(), "GOAWAY with an error sent, but not closed");
    }
    buf.len()
}

fuzz_target!(|data: &[u8]| {
    common::init_log();
    let Some(input) = Input::split(data) else {
        return;
    };
    // The core's clock is the driver's: any starting timestamp will do.
    let mut now = Timestamp::from_secs(1);
    let config = config(input.config);
    let router = Rc::new(services::router(config.max_message_size));
    let mut s = Session::new(&config.session_limits(), router, now);
    let mut out = OutputChecker::new(peer_max_frame(&input.stream));
    let mut left = &input.stream[..];
    let mut step = 0usize;
    let mut fed = 0usize;
    let mut clock = 0usize;
    let mut eof = false;
    while !left.is_empty() {
        let c = input.control(step);
        step += 1;
        let (chunk, after) = left.split_at(chunk_size(c, left.len()));
        left = after;
        fed += chunk.len();
        if !eof {
            out.client_sent(chunk);
        }
        s.handle_input(chunk, now);
        let mut flush = true;
        match c >> 4 {
            8 => {
                clock += 1;
                now += SMALL_STEPS[usize::from(c) % 4];
            }
            9 => {
                clock += 1;
                now += LARGE_STEPS[usize::from(c) % 4];
            }
            10 => s.shutdown(),
            11 => flush = false,
            15 => {
                eof = true;
                s.handle_read_closed(now);
            }
            _ => {}
        }
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
        if flush {
            for _ in 0..64 {
                if transmit(&mut s, &mut out, fed, clock) == 0 {
                    break;
                }
            }
        }
    }
    transmit(&mut s, &mut out, fed, clock);
    // The end: EOF, shutdown, every timer; all of it must be handled quietly.
    s.handle_read_closed(now);
    s.shutdown();
    for d in LARGE_STEPS {
        clock += 1;
        now += d;
        s.handle_timeout(now);
        for _ in 0..64 {
            if transmit(&mut s, &mut out, fed, clock) == 0 {
                break;
            }
        }
    }
});
