#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need
# (OpenSSH's client and server, for the differential and end-to-end tests),
# then runs every test. Run as root: the tests create a test user, start a
# private sshd on 127.0.0.1 and run the binary as unprivileged users.
set -euo pipefail
cd "$(dirname "$0")/.."

need_packages=()
command -v scp >/dev/null || need_packages+=(openssh-client)
[ -x /usr/sbin/sshd ] || need_packages+=(openssh-server)
# Packaging tests: lint the .deb and man pages, install it in a throwaway root.
command -v lintian >/dev/null || need_packages+=(lintian)
command -v mandoc >/dev/null || need_packages+=(mandoc)
command -v debootstrap >/dev/null || need_packages+=(debootstrap)
if [ ${#need_packages[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: missing ${need_packages[*]}; run as root to install them" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${need_packages[@]}"
fi

cargo test --locked "$@"

# Defence in depth: the same binary with its path checks switched off by a
# test-only feature, to show Landlock alone stops an escape. Its own target
# directory keeps it from replacing the normal test binary.
CARGO_TARGET_DIR=target/landlock-wall \
    cargo test --locked --features unchecked-paths-for-landlock-test --test landlock_wall
