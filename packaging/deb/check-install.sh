#!/usr/bin/env bash
# Installs, verifies, removes and purges a scp-server .deb in a throwaway
# Debian 12 root, running the package's real maintainer scripts there.
#
#   bash packaging/deb/check-install.sh target/deb/scp-server_*.deb
#
# The root is a minimal bookworm made by debootstrap (with openssh-client
# and systemd, as on a server) and cached under target/debootstrap/; each
# run works on a fresh copy of it and deletes the copy afterwards. Nothing
# is mounted into the copy, so deleting it is always safe. Needs root,
# debootstrap and the network (once, for the cache). Exit 0 when every
# check passed; each check prints one "ok:" line.
set -euo pipefail
cd "$(dirname "$0")/../.."
# debootstrap and chroot are in sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

deb=$(realpath "$1")
[ -f "$deb" ] || {
    echo "check-install: no package at $1" >&2
    exit 1
}
[ "$(id -u)" -eq 0 ] || {
    echo "check-install: must run as root (chroot)" >&2
    exit 1
}

suite=bookworm
mirror=${DEBOOTSTRAP_MIRROR:-http://deb.debian.org/debian}
packages=openssh-client,systemd
cache_root=$PWD/target/debootstrap
# The package list is part of the name: a changed list makes a new cache.
cache=$cache_root/$suite-minbase-${packages//,/-}

# A cache is used only once debootstrap finished (the marker), so an
# interrupted run never leaves a half-made root behind for the next one.
make_cache() {
    [ -e "$cache/.complete" ] && return 0
    rm -rf "$cache.partial"
    mkdir -p "$cache_root"
    echo "check-install: debootstrap $suite into $cache (once)" >&2
    timeout 600 debootstrap --variant=minbase --include="$packages" \
        "$suite" "$cache.partial" "$mirror" >&2
    rm -rf "$cache"
    mv "$cache.partial" "$cache"
    touch "$cache/.complete"
}

# One run at a time may make or copy the cache.
mkdir -p "$cache_root"
exec 9>"$cache_root.lock"
flock 9
make_cache

work=$(mktemp -d "$cache_root/run.XXXXXX")
trap 'rm -rf --one-file-system "$work"' EXIT
cp -a "$cache/." "$work/"
cp "$deb" "$work/tmp/scp-server.deb"
cp packaging/deb/check-inside.sh "$work/tmp/check-inside.sh"

env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 HOME=/root \
    timeout 300 chroot "$work" /bin/sh -eu /tmp/check-inside.sh
