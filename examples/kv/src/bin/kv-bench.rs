//! kv-bench (filled in below).
fn main() {}
