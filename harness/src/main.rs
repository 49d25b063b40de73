//! The `sunder` binary: everything lives in the library (`lib.rs` has the map).

fn main() {
    std::process::exit(sunder::cli_main());
}
