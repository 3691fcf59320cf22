//! echo-server on tonic and a single-threaded tokio runtime.

use crate::config::Config;
use super::ServeError;

/// Placeholder until the tokio driver lands.
pub fn run(_config: Config) -> Result<(), ServeError> {
    Ok(())
}
