//! echo-server on tonic and a single-threaded tokio runtime.

use super::ServeError;
use crate::config::Config;

/// Placeholder until the tokio driver lands.
pub fn run(_config: Config) -> Result<(), ServeError> {
    Ok(())
}
