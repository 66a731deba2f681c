#!/usr/bin/env bash
# Installs what pallet's jobs and tests need on a fresh Debian 12 machine (as root), only if
# missing: a C compiler and git for the build, runc (RUN steps), busybox-static (the test and
# example base image), umoci and skopeo (tools no one here wrote that read our OCI and Docker
# output in tests), GNU tar (layer interop tests), docker-registry + apache2-utils (htpasswd) +
# openssl (the registry client's tests run a real registry: plain, TLS, basic and token auth),
# bzip2/xz/zstd (ADD archive tests), tmux (the progress test drives the tty view in a terminal),
# openssh-client (ssh-agent, ssh-add: `--ssh` key files and the ssh mount tests) and
# openssh-server (the git-over-ssh test runs its own sshd on 127.0.0.1; the package's service
# is not needed). A C++ compiler builds libFuzzer for the fuzz targets' smoke run
# (bench/fuzz.sh --ci). uidmap (newuidmap/newgidmap, setuid) and passwd (useradd) are for
# rootless mode's tests, which build as a normal user made by the test. mkfs.ext4 (e2fsprogs),
# losetup (mount) and fallocate (util-linux): the full-disk fault test puts a store on a small
# loop-mounted ext4. docker.io (dockerd and the 20.10 client at /usr/bin/docker): the
# unprivileged-container test runs pallet's CI image under `docker run` without privileges
# (scripts/test.sh starts the daemon for the tests and stops it after). qemu-user-static (QEMU's
# user emulators and their binfmt_misc handler lines) and Debian's arm64 busybox-static, kept in
# /var/cache/pallet-testkit/arm64 (testkit's arm64 base image; PALLET_TESTKIT_CACHE to move it):
# the multi-platform tests build and run linux/arm64 images under emulation.
# Safe to run repeatedly.
set -euo pipefail

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v c++ >/dev/null 2>&1 || need_apt+=(g++)
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
command -v runc >/dev/null 2>&1 || need_apt+=(runc)
command -v newuidmap >/dev/null 2>&1 || need_apt+=(uidmap)
command -v useradd >/dev/null 2>&1 || need_apt+=(passwd)
command -v umoci >/dev/null 2>&1 || need_apt+=(umoci)
command -v skopeo >/dev/null 2>&1 || need_apt+=(skopeo)
command -v tar >/dev/null 2>&1 || need_apt+=(tar)
command -v bzip2 >/dev/null 2>&1 || need_apt+=(bzip2)
command -v xz >/dev/null 2>&1 || need_apt+=(xz-utils)
command -v zstd >/dev/null 2>&1 || need_apt+=(zstd)
command -v docker-registry >/dev/null 2>&1 || need_apt+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || need_apt+=(apache2-utils)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
command -v ssh-agent >/dev/null 2>&1 || need_apt+=(openssh-client)
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
[ -x /bin/busybox ] || need_apt+=(busybox-static)
command -v mkfs.ext4 >/dev/null 2>&1 || need_apt+=(e2fsprogs)
command -v losetup >/dev/null 2>&1 || need_apt+=(mount)
command -v fallocate >/dev/null 2>&1 || need_apt+=(util-linux)
{ [ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ]; } || need_apt+=(docker.io)
[ -f /usr/lib/binfmt.d/qemu-aarch64.conf ] || need_apt+=(qemu-user-static)
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${need_apt[*]} (run as root, or install them)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# The arm64 busybox-static binary (not installed: downloaded and unpacked into the cache).
arm64_cache="${PALLET_TESTKIT_CACHE:-/var/cache/pallet-testkit}/arm64"
if [ ! -x "$arm64_cache/bin/busybox" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing $arm64_cache/bin/busybox (run as root to fetch busybox-static:arm64)" >&2
    exit 1
  fi
  mkdir -p "$arm64_cache"
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
  fi
  apt-get update -qq
  (cd "$arm64_cache" && rm -f busybox-static_*_arm64.deb && apt-get download -qq busybox-static:arm64)
  dpkg-deb -x "$arm64_cache"/busybox-static_*_arm64.deb "$arm64_cache/unpacked"
  install -D -m 0755 "$arm64_cache/unpacked/bin/busybox" "$arm64_cache/bin/busybox"
  rm -rf "$arm64_cache/unpacked"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust (rustup) first" >&2
  exit 1
fi
