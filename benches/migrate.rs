//! Placeholder: the migration-run benchmark (see README). Filled in next.
fn main() {
    println!("benchmark not built yet");
}
