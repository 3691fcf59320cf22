//! `echo-client`: calls echo.Echo/Reply (and health) from a workstation.

fn main() {}
