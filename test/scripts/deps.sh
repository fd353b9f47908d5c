#!/usr/bin/env bash
# Installs what baton's tests, demo and benchmarks need, where it is missing.
# Usage: test/scripts/deps.sh [test|bench]   (bench adds pgbouncer, pgpool2, haproxy)
# test: PostgreSQL 15, MariaDB (server, client), sysbench, and the real clients of the
# comparison suite test/clients: psycopg 3, psycopg2, PyMySQL, mysqlclient (Debian's python3),
# pgJDBC and MariaDB Connector/J (with a JDK to compile against them), Node.js, and the npm
# packages of test/clients/node (npm ci, exact versions from its package-lock.json); iproute2
# (ip netns, for the partition tests of test/chaos) and util-linux (setpriv).
# Idempotent: when everything is there it returns at once.
set -euo pipefail
cd "$(dirname "$0")/../.."
want=(postgresql-15 postgresql-client-15 mariadb-server mariadb-client sysbench
  python3 python3-psycopg python3-psycopg2 python3-pymysql python3-mysqldb
  libpostgresql-jdbc-java libmariadb-java openjdk-17-jdk-headless
  iproute2 util-linux)
if [ "${1:-test}" = bench ]; then
  want+=(pgbouncer pgpool2 haproxy)
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node.js: any node with npm will do (the machine's may come from another repository than
# Debian's; Debian's npm package would conflict with it), so only a missing one is installed.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
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
fi
# test/clients/node: npm ci when node_modules does not match the lock file (npm records what it
# installed in node_modules/.package-lock.json).
node_dir=test/clients/node
if [ "${1:-test}" = test ] && [ -f "$node_dir/package-lock.json" ]; then
  if ! cmp -s <(grep '"version"' "$node_dir/package-lock.json" | sort -u) \
      <(grep '"version"' "$node_dir/node_modules/.package-lock.json" 2>/dev/null | sort -u); then
    echo "npm ci in $node_dir"
    (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
