//! Rebuilds when the stdlib changes: `include_dir!` embeds it, but cargo does not see new files.

fn main() {
    println!("cargo:rerun-if-changed=stdlib");
}
