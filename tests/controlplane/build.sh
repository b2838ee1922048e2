#!/usr/bin/env bash
# Build the local control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler, etcd, kwok, kwokctl) and helm from their Go modules, into a
# cache under ~/.cache keyed by version. A warm cache builds nothing.
#
# Prints the directory that holds the binaries as its last line.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache_root=${CALLPLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/callplatform}
gobuild_cache=$cache_root/go-build
export GOCACHE=${GOCACHE:-$gobuild_cache}
export GOFLAGS=-mod=mod
export CGO_ENABLED=0

log() { printf '[controlplane] %s\n' "$*" >&2; }

# build_once NAME VERSION: run the rest of the arguments unless $cache_root/NAME-VERSION/.done exists.
build_once() {
	local name=$1 version=$2
	shift 2
	local dir=$cache_root/bin/$name-$version
	if [[ -f $dir/.done ]]; then
		log "$name $version: cached in $dir"
		return
	fi
	log "$name $version: building (a cold build takes several minutes)..."
	local started=$SECONDS
	rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
	"$@" "$dir.tmp"
	touch "$dir.tmp/.done"
	rm -rf "$dir" && mv "$dir.tmp" "$dir"
	log "$name $version: built in $((SECONDS - started))s"
}

kube_ldflags() {
	local version=$1 major minor
	major=$(echo "$version" | sed -E 's/^v([0-9]+)\..*/\1/')
	minor=$(echo "$version" | sed -E 's/^v[0-9]+\.([0-9]+)\..*/\1/')
	local flags=""
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		flags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
		flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
	done
	echo "-s -w$flags"
}

build_kubernetes() {
	local out=$1 ldflags
	ldflags=$(kube_ldflags "$KUBERNETES_VERSION")
	for cmd in kube-apiserver kube-controller-manager kube-scheduler; do
		log "  go build k8s.io/kubernetes/cmd/$cmd"
		(cd "$here/kube" && go build -trimpath -ldflags "$ldflags" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd")
	done
}

build_etcd() {
	local out=$1
	log "  go build etcd (go.etcd.io/etcd/server/v3/etcdmain)"
	(cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$out/etcd" .)
}

go_install_into() {
	local out=$1
	shift
	for pkg in "$@"; do
		log "  go install $pkg"
		GOBIN=$out go install -trimpath -ldflags "-s -w" "$pkg"
	done
}

build_kwok() {
	go_install_into "$1" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
}

# helm's own Makefile sets its version and the Kubernetes version it assumes without a cluster (from the
# client-go it is built with); without them `helm version` says v3.x-dev and `helm template` assumes v1.20.
helm_ldflags() {
	local version=$1 gomod client_go k8s_minor flags
	gomod=$(go mod download -json "helm.sh/helm/v3@$version" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
	client_go=$(awk '$1 == "k8s.io/client-go" {print $2}' "$gomod")
	k8s_minor=$(echo "$client_go" | sed -E 's/^v0\.([0-9]+)\..*/\1/')
	flags="-s -w -X helm.sh/helm/v3/internal/version.version=$version -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
	for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
		flags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
	done
	echo "$flags"
}

build_helm() {
	local out=$1
	log "  go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION (with version ldflags)"
	GOBIN=$out go install -trimpath -ldflags "$(helm_ldflags "$HELM_VERSION")" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

# pion/turn, the second TURN server of the probe tests: our loopback wrapper (pion/main.go) and pion's own
# example servers, all from the module version pinned in pion/go.mod (PION_TURN_VERSION keys the cache).
build_pion() {
	local out=$1
	log "  go build pion-turnserver and examples/turn-server/* (github.com/pion/turn/v4@$PION_TURN_VERSION)"
	(
		cd "$here/pion"
		go build -trimpath -ldflags "-s -w" -o "$out/pion-turnserver" .
		for example in simple tcp tls lt-cred-turn-rest; do
			go build -trimpath -ldflags "-s -w" -o "$out/pion-turn-server-$example" \
				"github.com/pion/turn/v4/examples/turn-server/$example"
		done
	)
}

# Two runs at once (a test session and a demo, say) would share the .tmp directories and could mark a
# half-built directory done; the second waits for the first, then finds everything cached.
mkdir -p "$cache_root"
exec 9>"$cache_root/.build.lock"
flock 9

command -v go >/dev/null || { log "Go 1.21 or newer is required (it fetches the toolchain go.mod asks for from the module proxy)"; exit 1; }

build_once kubernetes "$KUBERNETES_VERSION" build_kubernetes
build_once etcd "$ETCD_VERSION" build_etcd
build_once kwok "$KWOK_VERSION" build_kwok
build_once helm "$HELM_VERSION-ldflags" build_helm
build_once pion "$PION_TURN_VERSION" build_pion

bin=$cache_root/bin/current
mkdir -p "$bin"
ln -sf "$cache_root/bin/kubernetes-$KUBERNETES_VERSION"/kube-* "$bin/"
ln -sf "$cache_root/bin/etcd-$ETCD_VERSION/etcd" "$bin/"
ln -sf "$cache_root/bin/kwok-$KWOK_VERSION"/kwok* "$bin/"
ln -sf "$cache_root/bin/helm-$HELM_VERSION-ldflags/helm" "$bin/"
ln -sf "$cache_root/bin/pion-$PION_TURN_VERSION"/pion-* "$bin/"
"$bin/kube-apiserver" --version >&2
echo "$bin"
