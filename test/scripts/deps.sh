#!/usr/bin/env bash
# Installs what baton's tests, demo and benchmarks need, where it is missing.
# Usage: test/scripts/deps.sh [test|bench]   (bench adds pgbouncer, pgpool2, haproxy)
# test: PostgreSQL 15, MariaDB (server, client) and sysbench.
set -euo pipefail
want=(postgresql-15 postgresql-client-15 mariadb-server mariadb-client sysbench)
if [ "${1:-test}" = bench ]; then
  want+=(pgbouncer pgpool2 haproxy)
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing packages: ${missing[*]} — install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packaged services must not hold the ports or data our harness uses.
for svc in postgresql mariadb pgbouncer pgpool2 haproxy; do
  (command -v systemctl >/dev/null && systemctl stop "$svc" 2>/dev/null) || service "$svc" stop >/dev/null 2>&1 || true
done
