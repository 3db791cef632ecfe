#!/usr/bin/env bash
# Demo: the real OpenSSH client (`scp -O`) uploads to and downloads from
# scp-server through a private sshd on 127.0.0.1.
#
# One command on a fresh Debian machine:   bash scripts/demo.sh
#
# What it does: installs openssh-server/-client if missing, builds the release
# binary, starts its own sshd (own temporary directory, own keys, a free high
# port, loopback only, stopped on exit and after a timeout), then copies a
# small tree and one file up and back down with `scp -O -r -p`, and checks
# with sha256sum that every byte, mode and mtime survived.
#
# What it does not do: touch /etc/ssh, the machine's own sshd, or your
# ~/.ssh. Sessions of the private sshd find our binary as `scp` because the
# one authorized key carries environment="PATH=<demo bin dir>:…".
set -euo pipefail
cd "$(dirname "$0")/.."

readonly SSHD=/usr/sbin/sshd
readonly SSHD_LIFETIME=600 # seconds; the watchdog ends sshd even if we die
LOGIN="$(id -un)"
readonly LOGIN

say() { printf '\n==> %s\n' "$*"; }
fail() {
    printf 'demo: %s\n' "$*" >&2
    exit 1
}

# --- prerequisites ----------------------------------------------------------

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        fail "need root to run: $*"
    fi
}

install_openssh_if_missing() {
    local missing=()
    [ -x "$SSHD" ] || missing+=(openssh-server)
    command -v scp >/dev/null && command -v ssh-keygen >/dev/null || missing+=(openssh-client)
    if [ ${#missing[@]} -eq 0 ]; then
        echo "OpenSSH client and server are installed: $(ssh -V 2>&1)"
        return
    fi
    echo "installing ${missing[*]}"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

build_binary() {
    command -v cargo >/dev/null || fail "cargo not found: install Rust (https://rustup.rs) and rerun"
    cargo build --release --locked
    BINARY="$PWD/target/release/scp-server"
    [ -x "$BINARY" ] || fail "build produced no $BINARY"
    echo "built $BINARY"
}

# --- the private sshd -------------------------------------------------------

make_workspace() {
    WORK="$(mktemp -d /tmp/scp-server-demo.XXXXXX)"
    chmod 755 "$WORK"
    mkdir -p "$WORK/sshd" "$WORK/bin" "$WORK/client" "$WORK/server" "$WORK/downloaded"
    echo "workspace: $WORK"
}

# Runs on every exit, including Ctrl-C and errors: stop sshd, remove files.
cleanup() {
    local status=$?
    if [ -n "${SSHD_PID:-}" ]; then
        kill "$SSHD_PID" 2>/dev/null || true # timeout(1) passes TERM on to sshd
        wait "$SSHD_PID" 2>/dev/null || true
    fi
    [ -n "${WORK:-}" ] && rm -rf "$WORK"
    exit "$status"
}

generate_keys() {
    ssh-keygen -q -t ed25519 -N '' -C "scp-server demo host" -f "$WORK/sshd/host_key"
    ssh-keygen -q -t ed25519 -N '' -C "scp-server demo client" -f "$WORK/sshd/client_key"
    # The session's PATH starts with our bin dir, whose `scp` is the binary.
    ln -s "$BINARY" "$WORK/bin/scp"
    printf 'environment="PATH=%s:/usr/local/bin:/usr/bin:/bin" %s\n' \
        "$WORK/bin" "$(cat "$WORK/sshd/client_key.pub")" >"$WORK/sshd/authorized_keys"
    chmod 644 "$WORK/sshd/authorized_keys"
}

write_sshd_config() {
    cat >"$WORK/sshd/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $1
HostKey $WORK/sshd/host_key
PidFile $WORK/sshd/sshd.pid
AuthorizedKeysFile $WORK/sshd/authorized_keys
AllowUsers $LOGIN
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PermitUserEnvironment PATH
PermitUserRC no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding no
LogLevel VERBOSE
# No Subsystem line: no SFTP, only the legacy protocol that scp -O speaks.
EOF
}

# A random high port nobody answers on (bash's /dev/tcp tries to connect).
random_free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}

# Starts sshd on a free port; retries when another process takes the port
# between our check and sshd's bind.
start_sshd() {
    # sshd running as root wants its privilege-separation directory, which
    # Debian's service creates at boot; create it the same way if missing.
    if [ "$(id -u)" -eq 0 ] && [ ! -d /run/sshd ]; then
        mkdir -m 0755 /run/sshd
    fi
    local attempt
    for attempt in 1 2 3 4 5; do
        PORT="$(random_free_port)"
        write_sshd_config "$PORT"
        timeout "$SSHD_LIFETIME" "$SSHD" -D -e -f "$WORK/sshd/sshd_config" 2>"$WORK/sshd/sshd.log" &
        SSHD_PID=$!
        if wait_for_sshd; then
            echo "private sshd (pid $SSHD_PID) listening on 127.0.0.1:$PORT, log: $WORK/sshd/sshd.log"
            return
        fi
        wait "$SSHD_PID" 2>/dev/null || true
        SSHD_PID=
        grep -q "Address already in use" "$WORK/sshd/sshd.log" || break
        echo "port $PORT was taken, retrying (attempt $attempt)"
    done
    cat "$WORK/sshd/sshd.log" >&2
    fail "private sshd did not start"
}

wait_for_sshd() {
    local _
    for _ in $(seq 100); do
        grep -q "Server listening on 127.0.0.1 port $PORT" "$WORK/sshd/sshd.log" && return 0
        kill -0 "$SSHD_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# --- the client -------------------------------------------------------------

# Options that point the client at the private sshd only and keep it away
# from ~/.ssh (-F /dev/null: no config; no known_hosts writes; no agent).
client_options() {
    CLIENT_OPTS=(-F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no
        -o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=/dev/null
        -o IdentitiesOnly=yes -o IdentityAgent=none -o LogLevel=ERROR
        -i "$WORK/sshd/client_key")
}

# Shows the scp command without the fixed options above, then runs it in
# full, bounded in time.
demo_scp() {
    printf '  $ scp -O -P %s %s\n' "$PORT" "$*"
    timeout 120 scp -O "${CLIENT_OPTS[@]}" -P "$PORT" "$@"
}

# Runs one command in a session, shown the way you would type it.
demo_ssh() {
    local destination=$1 command=$2
    printf "  \$ ssh -p %s %s '%s'\n" "$PORT" "$destination" "$command"
    timeout 60 ssh "${CLIENT_OPTS[@]}" -p "$PORT" "$destination" "$command"
}

# --- the demonstration --------------------------------------------------------

make_sample_files() {
    local tree="$WORK/client/project"
    mkdir -p "$tree/docs" "$tree/bin"
    printf 'hello from the client\n' >"$tree/README"
    printf 'notes, with a space in the name\n' >"$tree/docs/meeting notes.txt"
    head -c 300000 /dev/urandom >"$tree/docs/blob.bin"
    printf '#!/bin/sh\necho tool\n' >"$tree/bin/tool.sh"
    chmod 640 "$tree/README"
    chmod 755 "$tree/bin/tool.sh"
    chmod 750 "$tree/bin"
    # Old, distinct mtimes so that -p visibly preserves them.
    touch -d '2001-02-03 04:05:06' "$tree/README" "$tree/docs/blob.bin"
    touch -d '2010-10-10 10:10:10' "$tree/docs/meeting notes.txt" "$tree/bin/tool.sh"
    touch -d '2020-01-01 00:00:00' "$tree/docs" "$tree/bin" "$tree"
    head -c 1048576 /dev/urandom >"$WORK/client/single.bin"
    chmod 600 "$WORK/client/single.bin"
    touch -d '1999-12-31 23:59:59' "$WORK/client/single.bin"
    echo "client side:"
    listing "$WORK/client"
}

# Mode, mtime and name of everything below a directory, sorted.
listing() {
    (cd "$1" && find . -mindepth 1 -printf '  %M %TY-%Tm-%Td %TH:%TM:%.2TS  %p\n' | sort -k4)
}

# sha256 of every file below a directory, by relative name.
checksums() {
    (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
}

# Modes and mtimes of everything below a directory, by relative name.
attributes() {
    (cd "$1" && find . -mindepth 1 -printf '%p %m %T@\n' | sort)
}

same_everywhere() {
    local what=$1 a b
    a="$("$what" "$WORK/client")"
    for side in server downloaded; do
        b="$("$what" "$WORK/$side")"
        if [ "$a" != "$b" ]; then
            diff <(echo "$a") <(echo "$b") >&2 || true
            fail "$what differ between client and $side"
        fi
    done
}

main() {
    say "1. OpenSSH"
    install_openssh_if_missing

    say "2. Building scp-server"
    build_binary

    say "3. Starting a private sshd on 127.0.0.1"
    make_workspace
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    generate_keys
    start_sshd
    client_options
    echo "in its sessions, scp is:"
    # shellcheck disable=SC2016 # expanded by the remote shell, not here
    demo_ssh "$LOGIN@127.0.0.1" 'command -v scp; ls -l "$(command -v scp)"'

    say "4. Sample files"
    make_sample_files

    say "5. Upload (client -> server, handled by scp-server -t)"
    demo_scp -r -p "$WORK/client/project" "$LOGIN@127.0.0.1:$WORK/server/"
    demo_scp -p "$WORK/client/single.bin" "$LOGIN@127.0.0.1:$WORK/server/"
    echo "server side now:"
    listing "$WORK/server"

    say "6. Download (server -> client, handled by scp-server -f)"
    demo_scp -r -p "$LOGIN@127.0.0.1:$WORK/server/project" "$WORK/downloaded/"
    demo_scp -p "$LOGIN@127.0.0.1:$WORK/server/single.bin" "$WORK/downloaded/"
    echo "downloaded:"
    listing "$WORK/downloaded"

    say "7. Verification"
    checksums "$WORK/client"
    same_everywhere checksums
    same_everywhere attributes
    echo "OK: contents (sha256), modes and mtimes are identical on client, server and download."
}

main "$@"
