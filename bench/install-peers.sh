#!/usr/bin/env bash
# Installs the benchmark peers of `make bench` from Debian with apt-get:
#   nginx, haproxy  – the C anchors the proxy is compared with (also nginx serves as the origin)
#   wrk             – a load generator faster than autocannon (which saturates near 55–70k req/s)
#   caddy           – the Go anchor, only when this Debian release has a package for it
#   nghttp2-client  – h2load, an HTTP/2 load generator, when available
# The services are NOT enabled or started: the harness runs each binary itself with its own config
# on loopback ports. `make bench` works without any of them; it skips what is missing and says so.
#
#   sudo bench/install-peers.sh        (needs root for apt-get)
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  echo "install-peers: apt-get needs root; run: sudo $0" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "install-peers: apt-get not found (not Debian/Ubuntu); install nginx, haproxy, wrk, caddy by hand" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-peers: apt-get update"
apt-get update -q

wanted=(nginx-light haproxy wrk caddy nghttp2-client)
available=()
for package in "${wanted[@]}"; do
  if apt-cache show "$package" >/dev/null 2>&1; then
    available+=("$package")
  else
    # nginx-light does not exist on every release; fall back to the plain package.
    if [[ $package == nginx-light ]] && apt-cache show nginx >/dev/null 2>&1; then
      available+=(nginx)
    else
      echo "install-peers: $package has no Debian package here; the benchmark will skip it"
    fi
  fi
done

echo "install-peers: installing ${available[*]}"
# --no-install-recommends keeps this to the binaries; policy-rc.d stops Debian from starting the
# packaged services (nginx on :80, haproxy, caddy) as a side effect of installing them.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  created_policy=1
fi
trap '[[ $created_policy -eq 1 ]] && rm -f "$policy"' EXIT
apt-get install -y -q --no-install-recommends "${available[@]}"

for binary in nginx haproxy wrk caddy h2load; do
  if command -v "$binary" >/dev/null; then
    echo "install-peers: $binary -> $(command -v "$binary")"
  else
    echo "install-peers: $binary not installed"
  fi
done
