//! The migrations are embedded at compile time (`embed_migrations!` in `db.rs`), which does not
//! tell cargo about a new migration folder: rebuild when anything under `migrations` changes.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
