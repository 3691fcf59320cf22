//! The workstation client behind `echo-client` (feature `client`).

pub mod bench;
