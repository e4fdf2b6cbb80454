// `sqlx::migrate!` embeds migrations/ at compile time; without this, cargo would not rebuild the
// crate when a migration is added, and the binary would run the old set.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
