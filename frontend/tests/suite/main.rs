//! The frontend's integration tests, in one test binary: BuildKit's golden parser files, the
//! parser's cases, shell expansion, lowering, the Dockerfile corpora (the project's own in
//! testdata/corpus; ../shared/examples only when it is there), expansion limits, and
//! property tests. They need nothing but the frontend: `cargo test -p pallet-frontend`.

mod examples;
mod expansion_limits;
mod frontend_fuzz;
mod lowering;
mod parity;
mod parser_cases;
mod parser_golden;
mod shell_expansion;
