//! The `weft` binary: everything lives in the library; this only hands over the arguments.

fn main() {
    std::process::exit(weft::run(std::env::args_os()));
}
