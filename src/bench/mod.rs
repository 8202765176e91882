//! `tuanbot bench …`: measurements printed as JSON. Benchmarks live here,
//! never as timing assertions in tests.

pub mod claims;
pub mod parse;
