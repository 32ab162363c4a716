#!/bin/sh
# Lays out the container image's root filesystem in OUT: the static dromos
# binary, CA certificates, an /etc/passwd and /etc/group naming the
# non-root user (uid/gid 65532), an empty /data (the working directory,
# owned by that user) and an empty /tmp mount point. Nothing else: no
# shell, no package manager, no libc.
#
# The Dockerfile runs this script in its build stage and copies OUT into a
# FROM scratch image; internal/e2e/image runs the same script and starts the
# binary the way the image does (uid 65532, read-only root, these paths),
# so CI exercises the image's contents without a container runtime.
#
# Usage: deploy/image/build-rootfs.sh OUT [VERSION]
set -eu

out=${1:?usage: build-rootfs.sh OUT [VERSION]}
version=${2:-dev}
src=$(cd "$(dirname "$0")/../.." && pwd)
uid=65532

case "$out" in
/ | "") echo "build-rootfs.sh: refusing to lay the image out over $out" >&2; exit 2 ;;
esac
rm -rf "$out"
mkdir -p "$out/usr/local/bin" "$out/etc/ssl/certs" "$out/data" "$out/tmp"

# CGO off: a static binary that needs no libc or loader in the image.
(cd "$src" && CGO_ENABLED=0 go build -trimpath \
	-ldflags "-s -w -X github.com/dromos-dev/dromos/internal/cli.Version=$version" \
	-o "$out/usr/local/bin/dromos" ./cmd/dromos)

# Provider endpoints are https: Go's TLS reads this bundle on Linux.
cp /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/ca-certificates.crt"

# No login shell exists in the image; the entries only name the ids.
printf 'root:x:0:0:root:/:/nonexistent\ndromos:x:%s:%s:dromos:/data:/nonexistent\n' "$uid" "$uid" >"$out/etc/passwd"
printf 'root:x:0:\ndromos:x:%s:\n' "$uid" >"$out/etc/group"
chmod 0644 "$out/etc/passwd" "$out/etc/group" "$out/etc/ssl/certs/ca-certificates.crt"
chmod 0755 "$out/usr/local/bin/dromos" "$out/data"
chmod 1777 "$out/tmp"
if [ "$(id -u)" = 0 ]; then
	chown "$uid:$uid" "$out/data"
fi
