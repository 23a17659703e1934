//! kv-crash (filled in below).
fn main() {}
