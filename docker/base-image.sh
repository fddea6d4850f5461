#!/usr/bin/env bash
# Build the stack's base image from Debian's own packages, for machines where Docker Hub
# (python:3.11-slim-bookworm) is out of reach: Debian bookworm (minbase) with Python 3.11,
# venv, OpenJDK 17, procps and the CA certificates, imported as an image. About 3.5
# minutes and 530 MB; skipped when the tag exists (pass --force to rebuild).
#
#   docker/base-image.sh [TAG]        (default reco-base:bookworm; needs root, debootstrap)
#   DEBIAN_MIRROR=http://mirror/debian docker/base-image.sh
set -euo pipefail

force=0
if [ "${1:-}" = "--force" ]; then force=1; shift; fi
tag="${1:-reco-base:bookworm}"

if [ "$force" = 0 ] && docker image inspect "$tag" >/dev/null 2>&1; then
    echo "base image $tag: present"
    exit 0
fi
if ! command -v debootstrap >/dev/null; then
    echo "ERROR: debootstrap not found: apt-get install debootstrap (as root)" >&2
    exit 1
fi

# The mirror apt already uses here, unless DEBIAN_MIRROR says otherwise.
mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
    mirror=$(grep -hoE '^URIs:[[:space:]]*[^[:space:]]+/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | head -1 | awk '{print $2}')
fi
if [ -z "$mirror" ]; then
    mirror=$(grep -hoE '^deb[[:space:]]+[^[:space:]]+/debian/?[[:space:]]' /etc/apt/sources.list 2>/dev/null \
        | head -1 | awk '{print $2}')
fi
mirror="${mirror:-http://deb.debian.org/debian}"

rootfs=$(mktemp -d /tmp/reco-base-XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "base image $tag: debootstrap bookworm from $mirror"
debootstrap --variant=minbase \
    --include=python3,python3-venv,openjdk-17-jre-headless,procps,ca-certificates \
    bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
    tail -20 "$rootfs.log" >&2
    echo "ERROR: debootstrap failed (full log: $rootfs.log)" >&2
    exit 1
}
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    - "$tag" >/dev/null
rm -f "$rootfs.log"
echo "base image $tag: built"
