#!/usr/bin/env bash
# Makes sure the database servers the tests use are up: starts PostgreSQL and MariaDB when they
# are installed but stopped, and fails loudly when one is missing — the suite never skips a backend.
set -euo pipefail

wait_for() { # name, command
  for _ in $(seq 1 60); do
    if eval "$2" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "test-databases: $1 did not come up" >&2; exit 1
}

pg_ready() { pg_isready -h 127.0.0.1 -p 5432 -q; }
if ! pg_ready 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    echo "test-databases: PostgreSQL is not installed (apt-get install postgresql); the store suite needs it" >&2; exit 1
  fi
  echo "test-databases: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  wait_for PostgreSQL pg_ready
fi

my_ready() { mariadb -h 127.0.0.1 -P 3306 -u root -e 'SELECT 1'; }
if ! my_ready >/dev/null 2>&1; then
  if [ ! -x /usr/sbin/mariadbd ]; then
    echo "test-databases: MariaDB is not installed (apt-get install mariadb-server); the store suite needs it" >&2; exit 1
  fi
  echo "test-databases: starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_for MariaDB my_ready
fi
echo "test-databases: PostgreSQL and MariaDB are up"
