#!/usr/bin/env bash
# Builds the Debian package of scp-server and prints its path on the last
# line: target/deb/scp-server_VERSION_ARCH.deb.
#
# A binary package assembled with dpkg-deb alone (packaging/README.md says
# why): the static binary from scripts/build-static.sh, the man pages, the
# sshd_config example, the systemd files and the maintainer scripts of this
# directory. Needs only what every Debian system has (dpkg-deb, gzip) and
# the Rust toolchain. Run from anywhere; writes under target/deb/ only.
set -euo pipefail
cd "$(dirname "$0")/../.."

here=packaging/deb
out=target/deb
stage=$out/stage

die() {
    echo "deb/build.sh: $*" >&2
    exit 1
}

# Fields of the package ----------------------------------------------------

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || die "no version in Cargo.toml"
# Debian revision 1 of the upstream version.
deb_version="$version-1"
maintainer=${DEB_MAINTAINER:-$(git log -1 --format='%an <%ae>' 2>/dev/null || true)}
maintainer=${maintainer:-scp-server maintainers <root@localhost>}
# Timestamps (changelog date, file mtimes) from the last commit, so that two
# builds of one commit give the same package.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

# The binary ---------------------------------------------------------------

binary=$(bash scripts/build-static.sh | tail -n 1)
[ -x "$binary" ] || die "scripts/build-static.sh did not produce a binary"
case "$binary" in
    *x86_64-*) arch=amd64 ;;
    *) die "unknown architecture for $binary" ;;
esac

# The tree -----------------------------------------------------------------

rm -rf "$stage"
mkdir -p "$stage/DEBIAN"

put() { # MODE SOURCE DESTINATION-IN-PACKAGE
    install -D -m "$1" "$2" "$stage/$3"
}

put 0755 "$binary" usr/bin/scp-server
# The compiler's version notes are of no use in the installed binary.
if command -v objcopy >/dev/null; then
    objcopy --remove-section=.comment "$stage/usr/bin/scp-server"
fi
# OpenSSH's client is diverted to /usr/bin/scp.openssh by preinst.
ln -s scp-server "$stage/usr/bin/scp"

for page in man/scp-server.8 man/scp-server.conf.5; do
    section=${page##*.}
    put 0644 "$page" "usr/share/man/man$section/${page##*/}"
    gzip -9n "$stage/usr/share/man/man$section/${page##*/}"
done

doc=usr/share/doc/scp-server
put 0644 packaging/sshd_config.d/scp-drop.conf "$doc/examples/scp-drop.conf"
# The package's binary is /usr/bin/scp-server, not the hand-installed path.
sed -i 's|ForceCommand /usr/local/sbin/scp-server|ForceCommand /usr/bin/scp-server|' \
    "$stage/$doc/examples/scp-drop.conf"
put 0644 docs/drop-accounts.md "$doc/drop-accounts.md"
put 0644 README.md "$doc/README.md"
gzip -9n "$stage/$doc/drop-accounts.md" "$stage/$doc/README.md"

put 0644 systemd/sysusers.d/scp-server.conf usr/lib/sysusers.d/scp-server.conf
put 0644 systemd/tmpfiles.d/scp-server.conf usr/lib/tmpfiles.d/scp-server.conf
# Debian 12 keeps package units in /lib/systemd/system (lintian's rule).
for unit in systemd/system/*; do
    put 0644 "$unit" "lib/systemd/system/${unit##*/}"
done
put 0755 systemd/libexec/scp-drop-journal usr/libexec/scp-server/scp-drop-journal
put 0644 "$here/lintian-overrides" usr/share/lintian/overrides/scp-server

# The changelog and copyright that Debian policy requires.
changelog_date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
cat >"$stage/$doc/changelog.Debian" <<EOF
scp-server ($deb_version) unstable; urgency=medium

  * Package built from the scp-server source tree.

 -- $maintainer  $changelog_date
EOF
gzip -9n "$stage/$doc/changelog.Debian"

# The statically linked crates, with their licences, for the copyright file.
crates=$(cargo tree --locked --offline --edges normal,no-proc-macro --prefix none \
    --target x86_64-unknown-linux-musl --format '{p} ({l})' 2>/dev/null |
    grep -v '^scp-server ' | sed 's/ (\*)$//; s/^/ /' | sort -u)
[ -n "$crates" ] || die "cargo tree listed no crates"
year=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y)
awk -v maintainer="$maintainer" -v crates="$crates" -v year="$year" '
    /@CRATES@/ { print crates; next }
    { gsub(/@MAINTAINER@/, maintainer); gsub(/@YEAR@/, year); print }
' "$here/copyright.in" >"$stage/$doc/copyright"
chmod 0644 "$stage/$doc/copyright"

# Control files --------------------------------------------------------------

for script in preinst postinst prerm postrm; do
    install -m 0755 "$here/$script" "$stage/DEBIAN/$script"
done

installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f 1)
sed -e "s/@VERSION@/$deb_version/" -e "s/@ARCH@/$arch/" \
    -e "s/@INSTALLED_SIZE@/$installed_size/" -e "s|@MAINTAINER@|$maintainer|" \
    "$here/control.in" >"$stage/DEBIAN/control"

(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' |
    sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"

# Directories 0755 and every mtime the commit's, whatever the umask and
# checkout time were.
find "$stage" -type d -exec chmod 0755 {} +
find "$stage" -exec touch --no-dereference -d "@$SOURCE_DATE_EPOCH" {} +

deb="$out/scp-server_${deb_version}_$arch.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >&2
echo "$deb"
