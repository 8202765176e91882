//! `tuanbot bench …`: benchmarks that drive the real engine and print JSON.

pub mod claims;
