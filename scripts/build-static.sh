#!/usr/bin/env bash
# Builds the static release binary and prints its path on the last line.
# Prefers the musl target; where it cannot be installed (no rustup, no
# network), falls back to glibc with crt-static.
set -euo pipefail
cd "$(dirname "$0")/.."

musl=x86_64-unknown-linux-musl
have_musl() { rustup target list --installed 2>/dev/null | grep -qx "$musl"; }

if ! have_musl && command -v rustup >/dev/null; then
    echo "build-static: adding the $musl target" >&2
    rustup target add "$musl" >&2 || true
fi

if have_musl; then
    cargo build --release --locked --target "$musl" >&2
    echo "target/$musl/release/scp-server"
else
    gnu=x86_64-unknown-linux-gnu
    echo "build-static: $musl unavailable; building glibc with crt-static" >&2
    RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
        cargo build --release --locked --target "$gnu" >&2
    echo "target/$gnu/release/scp-server"
fi
