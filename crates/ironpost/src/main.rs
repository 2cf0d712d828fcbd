//! The `ironpost` binary: everything is in the library; see [`ironpost::cli`].

fn main() -> std::process::ExitCode {
    ironpost::cli::main()
}
