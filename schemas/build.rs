//! Rebuilds the crate when a migration is added, so that the embedded migrator has it.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
