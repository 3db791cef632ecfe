#!/bin/sh
# Runs inside the throwaway root of check-install.sh, as root, with the
# package at /tmp/scp-server.deb. Each check prints "ok: ..." or stops the
# script with "FAILED: ...".
set -eu

deb=/tmp/scp-server.deb
diversion='diversion of /usr/bin/scp to /usr/bin/scp.openssh by scp-server'

fail() {
    echo "FAILED: $*" >&2
    exit 1
}
ok() { echo "ok: $*"; }

sum() { sha256sum "$1" | cut -d ' ' -f 1; }

# OpenSSH's scp, run without arguments, prints its usage and exits 1.
runs_openssh_client() {
    out=$(scp 2>&1) && fail "scp without arguments succeeded: $out"
    case "$out" in
        "usage: scp "*) ;;
        *) fail "scp did not run OpenSSH's client: $out" ;;
    esac
    # A local copy: the client itself does it (through cp), no server.
    rm -f /tmp/copied
    scp /etc/os-release /tmp/copied || fail "scp could not copy a local file"
    cmp -s /etc/os-release /tmp/copied || fail "scp copied the wrong bytes"
}

not_diverted() {
    if dpkg-divert --list /usr/bin/scp | grep -q .; then
        fail "/usr/bin/scp is still diverted: $(dpkg-divert --list /usr/bin/scp)"
    fi
    [ ! -L /usr/bin/scp ] || fail "/usr/bin/scp is still a symlink"
    [ "$(sum /usr/bin/scp)" = "$openssh_sum" ] || fail "/usr/bin/scp is not OpenSSH's client"
    [ ! -e /usr/bin/scp.openssh ] || fail "/usr/bin/scp.openssh was left behind"
}

installed() {
    [ "$(dpkg-divert --list /usr/bin/scp)" = "$diversion" ] ||
        fail "expected '$diversion', got '$(dpkg-divert --list /usr/bin/scp)'"
    [ "$(readlink /usr/bin/scp)" = scp-server ] || fail "/usr/bin/scp is not a link to scp-server"
    [ "$(sum /usr/bin/scp.openssh)" = "$openssh_sum" ] ||
        fail "/usr/bin/scp.openssh is not OpenSSH's client"
    /usr/bin/scp-server --version | grep -q '^scp-server ' || fail "scp-server --version"
    out=$(dpkg --verify scp-server) || fail "dpkg --verify: $out"
    [ -z "$out" ] || fail "dpkg --verify: $out"
}

openssh_sum=$(sum /usr/bin/scp)
runs_openssh_client
ok "before: /usr/bin/scp is OpenSSH's client"

dpkg -i "$deb" >/tmp/dpkg.log 2>&1 || fail "dpkg -i: $(cat /tmp/dpkg.log)"
installed
ok "installed: $diversion; /usr/bin/scp -> scp-server; dpkg --verify clean"
runs_openssh_client
ok "installed: scp on the server runs OpenSSH's client through the pass-through"

for f in /usr/share/man/man8/scp-server.8.gz /usr/share/man/man5/scp-server.conf.5.gz \
    /usr/share/doc/scp-server/examples/scp-drop.conf /usr/share/doc/scp-server/copyright \
    /usr/lib/sysusers.d/scp-server.conf /usr/lib/tmpfiles.d/scp-server.conf \
    /lib/systemd/system/scp-drop-cleanup.service /lib/systemd/system/scp-drop-cleanup.timer \
    /lib/systemd/system/scp-drop-journal@.service /usr/libexec/scp-server/scp-drop-journal; do
    [ -e "$f" ] || fail "$f is missing"
done
ok "installed: man pages, sshd example, sysusers.d, tmpfiles.d, units"

getent group scp-drop >/dev/null || fail "group scp-drop was not created"
getent group scp-drop-fc >/dev/null || fail "group scp-drop-fc was not created"
[ "$(stat -c '%U:%G %a' /srv/scp-drop)" = "root:root 755" ] ||
    fail "/srv/scp-drop is $(stat -c '%U:%G %a' /srv/scp-drop), not root:root 755"
[ -L /etc/systemd/system/timers.target.wants/scp-drop-cleanup.timer ] ||
    fail "scp-drop-cleanup.timer was not enabled"
ok "postinst: groups scp-drop and scp-drop-fc, /srv/scp-drop root:root 0755, cleanup timer enabled"

out=$(systemd-analyze verify --man=no /lib/systemd/system/scp-drop-cleanup.service \
    /lib/systemd/system/scp-drop-cleanup.timer /lib/systemd/system/scp-drop-journal@.service 2>&1) ||
    fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify: $out"
ok "systemd-analyze verify: the installed units are clean"

# An upgrade (the same version again) runs preinst "upgrade" and must not
# stack a second diversion or lose the client.
dpkg -i "$deb" >/tmp/dpkg.log 2>&1 || fail "dpkg -i (again): $(cat /tmp/dpkg.log)"
installed
runs_openssh_client
ok "reinstalled: still one diversion, client intact"

# openssh-client removed and installed again while scp-server is installed:
# its scp must land at the diverted name.
client_deb=
for candidate in /var/cache/apt/archives/openssh-client_*.deb; do
    [ -f "$candidate" ] && client_deb=$candidate
done
if [ -n "$client_deb" ]; then
    dpkg -r openssh-client >/tmp/dpkg.log 2>&1 || fail "dpkg -r openssh-client: $(cat /tmp/dpkg.log)"
    [ ! -e /usr/bin/scp.openssh ] || fail "removing openssh-client left scp.openssh"
    out=$(scp 2>&1) && fail "scp without a client succeeded"
    case "$out" in
        *"OpenSSH scp client is not installed"*) ;;
        *) fail "scp without a client said: $out" ;;
    esac
    dpkg -i "$client_deb" >/tmp/dpkg.log 2>&1 || fail "dpkg -i openssh-client: $(cat /tmp/dpkg.log)"
    installed
    runs_openssh_client
    ok "openssh-client reinstalled under the diversion: its scp is /usr/bin/scp.openssh"
fi

dpkg -r scp-server >/tmp/dpkg.log 2>&1 || fail "dpkg -r: $(cat /tmp/dpkg.log)"
not_diverted
runs_openssh_client
[ ! -e /usr/bin/scp-server ] || fail "/usr/bin/scp-server is left after remove"
ok "removed: diversion undone, /usr/bin/scp is OpenSSH's client again"

dpkg -P scp-server >/tmp/dpkg.log 2>&1 || fail "dpkg -P: $(cat /tmp/dpkg.log)"
not_diverted
runs_openssh_client
status=$(dpkg-query -W -f '${db:Status-Abbrev}' scp-server 2>/dev/null || true)
case "$status" in
    "" | "pn "*) ;;
    *) fail "scp-server is still known to dpkg as '$status'" ;;
esac
[ ! -L /etc/systemd/system/timers.target.wants/scp-drop-cleanup.timer ] ||
    fail "the timer's symlink survived purge"
ok "purged: nothing of scp-server left, scp is OpenSSH's client"

# Straight from installed to purged, as `apt purge` does.
dpkg -i "$deb" >/tmp/dpkg.log 2>&1 || fail "dpkg -i (third): $(cat /tmp/dpkg.log)"
installed
dpkg -P scp-server >/tmp/dpkg.log 2>&1 || fail "dpkg -P (direct): $(cat /tmp/dpkg.log)"
not_diverted
runs_openssh_client
ok "installed then purged directly: diversion undone"
