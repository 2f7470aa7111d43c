#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver and etcd) from source through the Go module
# proxy, because prebuilt binaries cannot be downloaded. The result is cached outside the
# repository and reused; only the directory path is printed on stdout, progress goes to stderr.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-3.6.6}"
CACHE_ROOT="${PALISADE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/palisade}"
ASSETS="$CACHE_ROOT/envtest/k8s-${KUBE_VERSION}-etcd-${ETCD_VERSION}"

log() { printf '[envtest-assets] %s\n' "$*" >&2; }

if [[ -x "$ASSETS/kube-apiserver" && -x "$ASSETS/etcd" ]]; then
  log "reusing cached binaries in $ASSETS"
  echo "$ASSETS"
  exit 0
fi

mkdir -p "$ASSETS"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0

if [[ ! -x "$ASSETS/etcd" ]]; then
  log "building etcd v${ETCD_VERSION} (about 1 minute on 2 cores)"
  mkdir -p "$work/etcd" && cd "$work/etcd"
  go mod init envtest/etcd >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@v${ETCD_VERSION}" >&2
  go build -trimpath -o "$ASSETS/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$ASSETS/etcd.tmp" "$ASSETS/etcd"
  log "etcd done"
fi

if [[ ! -x "$ASSETS/kube-apiserver" ]]; then
  log "building kube-apiserver v${KUBE_VERSION} (about 7 minutes on 2 cores)"
  mkdir -p "$work/kas" && cd "$work/kas"
  go mod init envtest/kas >/dev/null 2>&1
  # k8s.io/kubernetes replaces its staging modules with local paths; pin each to its published tag.
  gomodcache=$(go env GOMODCACHE)
  go mod download -json "k8s.io/kubernetes@v${KUBE_VERSION}" >/dev/null
  kmod="$gomodcache/cache/download/k8s.io/kubernetes/@v/v${KUBE_VERSION}.mod"
  staging_version="v0.${KUBE_VERSION#1.}"
  {
    echo "require k8s.io/kubernetes v${KUBE_VERSION}"
    grep -E '^\s*k8s.io/[a-z0-9-]+ => ./staging/' "$kmod" | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
  } >> go.mod
  log "pinned $(grep -c '^replace' go.mod) staging modules to ${staging_version}"
  printf 'package main\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver/app"\nfunc main() {}\n' > main.go
  go mod tidy >&2
  log "compiling (progress: package count below)"
  go build -trimpath -v -o "$ASSETS/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver 2>&1 \
    | awk '{n++; if (n % 100 == 0) printf "[envtest-assets]   %d packages compiled\n", n > "/dev/stderr"}'
  mv "$ASSETS/kube-apiserver.tmp" "$ASSETS/kube-apiserver"
  log "kube-apiserver done"
fi

echo "$ASSETS"
