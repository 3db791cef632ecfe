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
# The real-client SCP matrix (tests/scp_clients.rs): PuTTY's pscp and
# puttygen, curl (scp:// through libssh2), and Python for the library
# clients' virtual environment.
command -v pscp >/dev/null || need_packages+=(putty-tools)
command -v puttygen >/dev/null || need_packages+=(putty-tools)
command -v curl >/dev/null || need_packages+=(curl)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_packages+=(python3-venv)
if [ ${#need_packages[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: missing ${need_packages[*]}; run as root to install them" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${need_packages[@]}"
fi

# The Python SCP clients of the matrix, in a virtual environment of the
# build tree: paramiko with the scp module, asyncssh, and ansible-pylibssh
# (libssh). The tests find its interpreter through SCP_CLIENTS_PYTHON.
client_venv=target/scp-client-venv
if ! "$client_venv/bin/python" -c 'import paramiko, scp, asyncssh, pylibsshext' 2>/dev/null; then
    python3 -m venv "$client_venv"
    "$client_venv/bin/pip" install --quiet --disable-pip-version-check \
        paramiko scp asyncssh ansible-pylibssh
fi
SCP_CLIENTS_PYTHON="$(pwd)/$client_venv/bin/python"
export SCP_CLIENTS_PYTHON

cargo test --locked "$@"

# Defence in depth: the same binary with its path checks switched off by a
# test-only feature, to show Landlock alone stops an escape. Its own target
# directory keeps it from replacing the normal test binary.
CARGO_TARGET_DIR=target/landlock-wall \
    cargo test --locked --features unchecked-paths-for-landlock-test --test landlock_wall
