//! The README's worked example ("Add your own service"): a `greeter.Greeter`
//! service (`proto/examples/greeter.proto`) served by the runtime-free core
//! beside echo-server's own services. Run it with
//! `cargo run --no-default-features --features runtime-free --example greeter`
//! (it takes echo-server's flags); `tests/own_service.rs` calls it.

use std::process::ExitCode;
use std::time::Duration;

use lean_grpc::config::{Command, Config};
use lean_grpc::grpc::api::{Ctx, Next, Router, Status, Streaming};
use lean_grpc::h2::Timestamp;
use lean_grpc::proto::greeter::greeter_core::{Greeter, GreeterService};
use lean_grpc::proto::greeter::{CountdownRequest, HelloReply, HelloRequest};
use lean_grpc::status::Code;

/// The service's logic: one method per RPC of `service Greeter`.
pub struct MyGreeter;

impl Greeter for MyGreeter {
    /// Unary: return the reply, or a status.
    fn say_hello(&self, ctx: &mut Ctx<'_>, request: HelloRequest) -> Result<HelloReply, Status> {
        if request.name.is_empty() {
            return Err(Status::new(Code::InvalidArgument, "name is empty"));
        }
        // Request metadata, and trailing metadata for the answer.
        let lang = ctx.request_header("x-lang").unwrap_or(b"en").to_vec();
        ctx.set_trailer("x-lang", &lang)?;
        Ok(HelloReply {
            message: format!("Hello, {}!", request.name),
        })
    }

    /// Server streaming: return a handler the server polls for replies.
    fn countdown(
        &self,
        ctx: &mut Ctx<'_>,
        request: CountdownRequest,
    ) -> Result<Box<dyn Streaming<(), HelloReply>>, Status> {
        Ok(Box::new(Countdown {
            left: request.from.min(10),
            next_at: ctx.now(),
            done: false,
        }))
    }
}

/// One `Countdown` call: a small state object, polled from the server's
/// loop whenever it may send and when its timer is due. No thread, no
/// async runtime.
struct Countdown {
    left: u32,
    next_at: Timestamp,
    done: bool,
}

impl Streaming<(), HelloReply> for Countdown {
    fn poll_next(&mut self, ctx: &mut Ctx<'_>) -> Next<HelloReply> {
        if self.done {
            return Next::Done(Status::ok());
        }
        if ctx.now() < self.next_at {
            ctx.wake_at(self.next_at); // not yet: poll me then
            return Next::Pending;
        }
        self.next_at = ctx.now() + Duration::from_millis(100);
        let message = if self.left == 0 {
            self.done = true;
            "Liftoff!".to_string()
        } else {
            self.left -= 1;
            (self.left + 1).to_string()
        };
        Next::Message(HelloReply { message })
    }
}

/// echo-server's services, plus ours: one line to register it.
pub fn router(config: &Config) -> Router {
    let mut router = lean_grpc::grpc::services::router(config.max_message_size);
    router.add(GreeterService(MyGreeter));
    router
}

fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(Command::Run(config)) => config,
        Ok(_) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let router = router(&config);
    match lean_grpc::server::readiness::run_with(config, router) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
