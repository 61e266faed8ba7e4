#!/usr/bin/env bash
# Installs Debian's clickhouse-server (the analytics database the ClickHouse tests start
# privately, see test/helpers/clickhouse.ts) when it is missing. Idempotent: does nothing when
# the binary is already there. Non-interactive; prints each step. Exit status 0 = installed.
# The system service is not started: tests run their own server on loopback ports.
set -euo pipefail

binary_present() { command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ]; }

if binary_present; then
  echo "install-clickhouse: clickhouse-server already installed ($(command -v clickhouse-server || echo /usr/sbin/clickhouse-server)); nothing to do"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null 2>&1; then sudo=(sudo -n); else
  echo "install-clickhouse: not root and no sudo: cannot install clickhouse-server" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-clickhouse: apt-get update"
"${sudo[@]}" apt-get update -q
echo "install-clickhouse: apt-get install clickhouse-server clickhouse-client"
# policy-rc.d: keep the package's post-install from starting a system service (tests use their own).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod +x "$policy"
  created_policy=1
fi
status=0
"${sudo[@]}" apt-get install -y -q --no-install-recommends clickhouse-server clickhouse-client || status=$?
if [ "$created_policy" -eq 1 ]; then "${sudo[@]}" rm -f "$policy"; fi
if [ "$status" -ne 0 ]; then
  echo "install-clickhouse: apt-get install failed (exit $status)" >&2
  exit "$status"
fi
if ! binary_present; then
  echo "install-clickhouse: installed, but no clickhouse-server binary found" >&2
  exit 1
fi
echo "install-clickhouse: installed $(dpkg-query -W -f='${Package} ${Version}' clickhouse-server)"
