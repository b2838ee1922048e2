#!/usr/bin/env bash
# Install the Debian packages the tests and the demo use, if they are missing:
# coturn (real TURN server), stun-server (legacy stund, an RFC 3489 STUN peer), prosody (real BOSH),
# PostgreSQL, promtool, nginx (serves the security headers the headers probe checks), and what builds and
# runs the operator image without a Docker engine: mmdebstrap (the base), buildah (the build), podman + runc
# (the run; crun fails on hybrid cgroups). As root with --network host, none of uidmap, slirp4netns or
# fuse-overlayfs is needed.
# Services are not started by the packages: the tests start their own on loopback.
# With --bench, also the peers the benchmarks compare against (prometheus-blackbox-exporter).
set -euo pipefail

declare -A wanted=(
	[turnserver]=coturn
	[stund]=stun-server
	[prosody]=prosody
	[promtool]=prometheus
	[/usr/lib/postgresql/15/bin/initdb]=postgresql
	[/usr/sbin/nginx]=nginx-light
	[mmdebstrap]=mmdebstrap
	[buildah]=buildah
	[podman]=podman
	[runc]=runc
)

missing=()
for binary in "${!wanted[@]}"; do
	if [[ $binary == /* ]]; then
		[[ -x $binary ]] || missing+=("${wanted[$binary]}")
	else
		command -v "$binary" >/dev/null 2>&1 || missing+=("${wanted[$binary]}")
	fi
done
if [[ ${1:-} == --bench ]]; then
	command -v prometheus-blackbox-exporter >/dev/null 2>&1 || missing+=(prometheus-blackbox-exporter)
fi

if ((${#missing[@]} == 0)); then
	echo "[system-deps] all present"
	exit 0
fi

sudo=""
[[ $(id -u) -eq 0 ]] || sudo=sudo
echo "[system-deps] installing: ${missing[*]}"
# Keep the packages' init scripts from starting system-wide services (prometheus on :9090, coturn, prosody, nginx on :80).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
	printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
	$sudo chmod +x "$policy"
	created_policy=1
fi
trap '[[ $created_policy == 1 ]] && $sudo rm -f "$policy"' EXIT
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "[system-deps] installed: ${missing[*]}"
