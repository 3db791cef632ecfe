#!/usr/bin/env bash
# scp-server against OpenSSH's server-side scp, in the same run (issue 7).
#
#   bash bench/run.sh            full benchmark; table on stdout and in bench/results.md
#   bash bench/run.sh --quick    small sizes, one run: proves the harness works (CI)
#
# Further arguments go to the driver (bench/driver): --runs N, --only 1,2,5a,
# --no-e2e, --note TEXT, --out FILE. Environment:
#   OURS=PATH     the binary to measure (default: the static release build,
#                 scripts/build-static.sh — the binary that gets installed)
#   OPENSSH=PATH  OpenSSH's scp (default /usr/bin/scp.openssh if our package
#                 diverted it there, else /usr/bin/scp)
#
# Work files go to a private tmpfs mounted for the run (as root), else to
# /dev/shm. Rows 5* start a private sshd on 127.0.0.1 under timeout(1); the
# machine's own sshd and ~/.ssh are never touched.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
for arg in "$@"; do
    [ "$arg" = --quick ] && quick=true
done

log() { echo "bench: $*" >&2; }

if [ -z "${OURS:-}" ]; then
    log "building the static release binary"
    OURS=$(bash scripts/build-static.sh | tail -n 1)
fi
OURS=$(realpath "$OURS")
if [ -z "${OPENSSH:-}" ]; then
    OPENSSH=/usr/bin/scp
    [ -x /usr/bin/scp.openssh ] && OPENSSH=/usr/bin/scp.openssh
fi
[ -x "$OPENSSH" ] || { log "OpenSSH's scp not found at $OPENSSH (install openssh-client)"; exit 1; }

log "building the driver"
cargo build --release --locked --quiet \
    --manifest-path bench/driver/Cargo.toml --target-dir target/bench
driver=target/bench/release/scp-bench

# A private tmpfs keeps other users of /dev/shm out of the figures; its
# size holds the big file, its copy and one more during an overwrite.
work=$(mktemp -d /tmp/scp-bench.XXXXXX)
mounted=false
# Free page reporting hands freed memory back to the VM's host at once
# (min_free_ms 0 on the VM this was measured on); the next contender to
# allocate those pages then pays a host fault per page, up to 4x the CPU of
# a sink run, landing on whichever run comes next. Freed pages are kept for
# 10 s during the run (so the driver's warm-up works) and the setting is
# restored afterwards. Only where the knob exists and we may write it.
reporting=/sys/module/page_reporting/parameters/min_free_ms
reporting_was=
if [ -w "$reporting" ]; then
    reporting_was=$(cat "$reporting")
    echo 10000 >"$reporting" && log "free page reporting delayed to 10 s for the run (was ${reporting_was} ms)"
fi
cleanup() {
    if [ -n "$reporting_was" ]; then echo "$reporting_was" >"$reporting" || true; fi
    if $mounted; then umount "$work" || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=6g,mode=0755 scp-bench "$work" 2>/dev/null; then
    mounted=true
else
    rmdir "$work"
    work=$(mktemp -d /dev/shm/scp-bench.XXXXXX)
    log "no private tmpfs (not root, or mount refused); using $work"
fi

if $quick; then
    out=target/bench/results-quick.md
    limit=20m
else
    out=bench/results.md
    limit=4h
fi
rev=$(git describe --always --dirty 2>/dev/null || echo unknown)
notes=()
if [ -n "$reporting_was" ]; then
    notes=(--note "free page reporting: min_free_ms ${reporting_was} -> 10000 for the run, restored after (see bench/README.md)")
fi

# timeout(1) bounds the driver even if a server under test hangs.
timeout --signal=TERM --kill-after=30 "$limit" \
    "$driver" --dir "$work/w" --ours "$OURS" --openssh "$OPENSSH" \
    --out "$out" --note "scp-server at git $rev" "${notes[@]}" "$@"
