//! Arbitrary Dockerfile-ish input through the whole frontend (parse, instructions, expansion,
//! lowering): errors are fine, panics are not.

use frontend::lower::{lower, LowerOptions, Offline};
use frontend::parser::parse;
use proptest::prelude::*;

const TOKENS: &[&str] = &[
    "FROM ",
    "scratch",
    "alpine",
    " AS ",
    "a",
    "b",
    "RUN ",
    "COPY ",
    "ADD ",
    "ENV ",
    "ARG ",
    "LABEL ",
    "WORKDIR ",
    "USER ",
    "CMD ",
    "ENTRYPOINT ",
    "SHELL ",
    "ONBUILD ",
    "HEALTHCHECK ",
    "EXPOSE ",
    "VOLUME ",
    "STOPSIGNAL ",
    "--from=",
    "--from=0",
    "--from=a",
    "--mount=type=cache,target=",
    "--mount=type=bind,from=a,target=/x",
    "--mount=type=secret,id=s",
    "--chmod=",
    "--chown=",
    "--link",
    "--parents",
    "--platform=",
    "--network=none",
    "$",
    "${",
    "}",
    "${A:-x}",
    "${A:?}",
    "$A",
    "A=1",
    "A",
    "=",
    ":",
    "/",
    "./",
    "..",
    ".",
    "*",
    "[",
    "]",
    "\"",
    "'",
    "\\",
    "\\\n",
    "\n",
    " ",
    "\t",
    "<<EOF",
    "<<-EOF",
    "EOF",
    "#",
    "# escape=`\n",
    "`",
    "[\"a\"]",
    "CMD",
    "NONE",
    "0",
    "80/tcp",
    "1.5s",
    "-",
    "é",
    "\u{0}",
];

fn fuzz_cases() -> u32 {
    std::env::var("PALLET_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

fn dockerfile() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..60).prop_map(|t| t.concat())
}

proptest! {
    // PALLET_FUZZ_CASES=200000 for a long run; CI runs the default.
    #![proptest_config(ProptestConfig { cases: fuzz_cases(), ..ProptestConfig::default() })]

    #[test]
    fn frontend_never_panics(src in dockerfile(), target in prop::option::of("[ab]"), arg in "[A-Z]{0,2}") {
        if let Ok(df) = parse(src.as_bytes()) {
            let mut opts = LowerOptions { target, ..LowerOptions::default() };
            opts.build_args.insert(arg.clone(), "v".into());
            let _ = lower(&df, &opts, &Offline).map_err(|e| e.render("Dockerfile", &src));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(df) = parse(&bytes) {
            let _ = lower(&df, &LowerOptions::default(), &Offline);
        }
    }
}
