//! The builder's integration tests, in one test binary. Each module is a file that used to be
//! a binary of its own, each linking the pallet library and its debug info again: one binary
//! builds the tests with half the CPU time and a tenth of the disk. One module's tests:
//! `cargo test -p pallet-builder --test suite build_e2e::`.
//!
//! Tests that need root and tools check them with `testkit::require` (a skip with a note, a
//! failure under CI=true); those that drive the `pallet` binary use `testkit::pallet!`.

mod add_git;
mod add_url;
mod build_e2e;
mod buildkit_parity;
mod chroot_mode;
mod cli;
mod cli_help;
mod compression;
mod crash_recovery;
mod faults_cancel;
mod faults_concurrency;
mod faults_disk;
mod faults_kill;
mod faults_kit;
mod faults_registry;
mod fileop;
mod hostile;
mod layering;
mod mount_pack;
mod multiplatform;
mod named_context_dir;
mod outputs;
mod parity_add;
mod parity_addgit;
mod parity_args;
mod parity_cache;
mod parity_check;
mod parity_cmd;
mod parity_copy;
mod parity_core;
mod parity_errors;
mod parity_export;
mod parity_heredoc;
mod parity_image;
mod parity_kit;
mod parity_mount;
mod parity_multistage;
mod parity_namedcontext;
mod parity_onbuild;
mod parity_parents;
mod parity_platform;
mod parity_resources;
mod parity_run_modes;
mod parity_sde;
mod parity_workdir;
mod progress_e2e;
mod provenance;
mod registry_e2e;
mod registry_tls_e2e;
mod remote_cache;
mod remote_cache_mounts;
mod rootless;
mod run_inspect;
mod run_lifecycle;
mod runc_exec;
mod snapshot;
mod ssh_mount;
mod unprivileged;
