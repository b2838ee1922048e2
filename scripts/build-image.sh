#!/usr/bin/env bash
# Build the operator image without a Docker engine or a public image registry:
#  1. a Debian base image from Debian packages (mmdebstrap --variant=minbase), cached by its inputs;
#  2. the repository's Dockerfile with buildah, against that base (--build-arg BASE_IMAGE=...).
# The machine's apt sources file is mmdebstrap's mirror argument, so no mirror host is written here.
# pip in the build stage trusts the host's CA bundle, bind-mounted read-only (never baked in).
#
#   scripts/build-image.sh [IMAGE]      default localhost/callplatform-operator:dev
#
# Env: APT_SOURCES (default /etc/apt/sources.list.d/debian.sources), DEBIAN_RELEASE (bookworm),
# CALLPLATFORM_CACHE (~/.cache/callplatform; the base rootfs is kept under image/).
# Prints the image's size and the build's duration; the last line is `image=<name>`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

image=${1:-localhost/callplatform-operator:dev}
release=${DEBIAN_RELEASE:-bookworm}
sources=${APT_SOURCES:-/etc/apt/sources.list.d/debian.sources}
ca_bundle=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
cache=${CALLPLATFORM_CACHE:-$HOME/.cache/callplatform}/image
# What the operator needs at run time: Python 3.11 (bookworm's), venv for the build stage's pip,
# the CA store for TLS probes, and useradd/groupadd for the image's user.
packages=(python3 python3-venv ca-certificates passwd)

log() { echo "[build-image] $*" >&2; }
for tool in buildah mmdebstrap; do
	command -v "$tool" >/dev/null || {
		log "$tool is not installed: run scripts/install-system-deps.sh"
		exit 1
	}
done
[[ -r $sources ]] || {
	log "no apt sources file at $sources (set APT_SOURCES)"
	exit 1
}

started=$SECONDS
# The base is keyed by everything that decides its content: release, package list, apt sources.
key=$({
	echo "$release"
	printf '%s\n' "${packages[@]}"
	cat "$sources"
} | sha256sum | cut -c1-16)
base=localhost/callplatform-base:$release-$key
rootfs=$cache/base-$release-$key.tar

if buildah inspect --type image "$base" >/dev/null 2>&1; then
	log "base $base: cached"
else
	if [[ ! -s $rootfs ]]; then
		log "base: mmdebstrap --variant=minbase $release (${packages[*]})"
		mkdir -p "$cache"
		include=$(
			IFS=,
			echo "${packages[*]}"
		)
		# No apt lists, caches or docs in the base; the image never runs apt.
		mmdebstrap --quiet --variant=minbase --format=tar --include="$include" \
			--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
			--dpkgopt='path-exclude=/usr/share/locale/*' \
			--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
			"$release" "$rootfs.tmp" "$sources"
		mv "$rootfs.tmp" "$rootfs"
	fi
	log "base: importing $rootfs"
	container=$(buildah from scratch)
	trap 'buildah rm "$container" >/dev/null 2>&1 || true' EXIT
	buildah add --quiet "$container" "$rootfs" / >/dev/null
	buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		--env LANG=C.UTF-8 --cmd /bin/bash "$container"
	buildah commit --quiet --rm "$container" "$base" >/dev/null
	trap - EXIT
fi
base_done=$SECONDS

log "image: buildah bud $image (BASE_IMAGE=$base)"
# Docker format: OCI images drop the Dockerfile's SHELL (bash with pipefail).
buildah bud --quiet --isolation chroot --layers --format docker --build-arg "BASE_IMAGE=$base" \
	--volume "$ca_bundle:/etc/ssl/certs/ca-certificates.crt:ro" \
	--tag "$image" --file Dockerfile . >/dev/null

size=$(buildah inspect --type image --format '{{.Size}}' "$image" 2>/dev/null || true)
if [[ -z $size || $size == 0 || $size == "<no value>" ]]; then
	size=$(podman image inspect --format '{{.Size}}' "$image" 2>/dev/null || echo 0)
fi
echo "image size: $((size / 1024 / 1024)) MiB ($size bytes)"
echo "build time: $((SECONDS - started)) s (base $((base_done - started)) s, image $((SECONDS - base_done)) s)"
echo "image=$image"
