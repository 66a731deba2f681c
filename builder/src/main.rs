//! The `pallet` binary: everything is in the library (`pallet::cli`).

fn main() -> std::process::ExitCode {
    pallet::cli::main()
}
