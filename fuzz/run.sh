#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 600 s each), one after
# another, or all at once with JOBS=3. Builds on the stable toolchain:
#   - by default with AddressSanitizer, through RUSTC_BOOTSTRAP=1
#     (cargo-fuzz passes -Zsanitizer=address, which stable rustc accepts
#     only then);
#   - SANITIZER=none: no ASan, plain stable (about 10x the executions/s).
# New inputs go to fuzz/runs/<target>/ (not committed); the committed seeds
# in fuzz/corpus/<target>/ are read only. Logs: fuzz/runs/<target>.log.
# Exit status nonzero if any target found a crash (see fuzz/artifacts/).
set -euo pipefail

seconds="${1:-600}"
jobs="${JOBS:-1}"
sanitizer="${SANITIZER:-address}"
targets=(record_parser sink command_parser sftp_packet sftp_server)
cd "$(dirname "$0")/.."

if [ "$sanitizer" != none ]; then
	export RUSTC_BOOTSTRAP=1
fi

cargo fuzz build -s "$sanitizer"

# The sink and sftp_server targets write files (beneath a fresh root per
# input). As root, a
# confinement bug -- or a mutation experiment with the checks removed --
# could write anywhere on the machine: once, a mutated build created
# directories in /. So, as root, the fuzzers run as nobody (setpriv), with
# their work and artifact directories handed to that user.
run_as=()
if [ "$(id -u)" -eq 0 ]; then
	run_as=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
fi

run_one() {
	local target="$1"
	local binary="fuzz/target/x86_64-unknown-linux-gnu/release/$target"
	mkdir -p "fuzz/runs/$target" "fuzz/artifacts/$target"
	if [ ${#run_as[@]} -gt 0 ]; then
		chown -R 65534:65534 "fuzz/runs/$target" "fuzz/artifacts/$target"
	fi
	# The binary cargo fuzz built, run directly (cargo fuzz run would need
	# the toolchain, which lives in root's home). -max_len keeps the sink
	# and the SFTP server fast: small trees, small files; sftp_packet gets
	# room for a WRITE large enough to be streamed (64 KiB and more).
	local max_len=4096
	[ "$target" = sftp_packet ] && max_len=140000
	"${run_as[@]}" "$binary" "fuzz/runs/$target" "fuzz/corpus/$target" \
		-artifact_prefix="fuzz/artifacts/$target/" \
		-max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 >"fuzz/runs/$target.log" 2>&1
}

status=0
if [ "$jobs" -gt 1 ]; then
	pids=()
	for t in "${targets[@]}"; do
		run_one "$t" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || status=1; done
else
	for t in "${targets[@]}"; do run_one "$t" || status=1; done
fi

# The sink and sftp_server targets work in
# /dev/shm/scp-server-fuzz-TARGET-PID (or $TMPDIR);
# libFuzzer exits without running destructors, so remove what is left by
# processes that are gone.
for dir in /dev/shm/scp-server-fuzz-* "${TMPDIR:-/tmp}"/scp-server-fuzz-*; do
	[ -d "$dir" ] || continue
	[ -d "/proc/${dir##*-}" ] || rm -rf "$dir"
done

for t in "${targets[@]}"; do
	echo "== $t"
	grep -E '^#[0-9]+.*(DONE|pulse)|stat::number_of_executed_units|stat::peak_rss|SUMMARY|panicked' \
		"fuzz/runs/$t.log" | tail -n 4 || true
done
exit "$status"
