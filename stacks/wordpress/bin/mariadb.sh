#!/bin/sh
# The stack's database: mariadbd on its own datadir (in the deployment's folder) and port, never /var/lib/mysql
# nor the system service. Every provisioning starts from a new, empty datadir (the setup steps then install and
# seed the same site); the site's database and user come from an init file the server runs itself before it
# accepts connections.
# Usage: mariadb.sh DATADIR PORT INIT_SQL USER
set -eu
datadir=$1 port=$2 init=$3 user=$4
# Its own temporary folder too: /tmp is shared with every other server on the machine.
rm -rf "$datadir" "$datadir.tmp"
mkdir -p "$datadir" "$datadir.tmp"
mariadb-install-db --no-defaults --datadir="$datadir" --tmpdir="$datadir.tmp" --user="$user" --skip-test-db \
    --auth-root-authentication-method=socket >"$datadir.install.log" 2>&1 \
    || { grep -m 3 ERROR "$datadir.install.log" || tail -n 5 "$datadir.install.log"; exit 1; }
# A short relative socket (mariadbd runs in its datadir): a deployment's folder can be longer than a socket path.
exec mariadbd --no-defaults --datadir="$datadir" --tmpdir="$datadir.tmp" --user="$user" --port="$port" \
    --bind-address=127.0.0.1 --socket=mariadbd.sock --pid-file=mariadbd.pid --init-file="$init" --skip-name-resolve --skip-log-bin \
    --performance-schema=OFF --max-connections=300 --innodb-buffer-pool-size=128M --innodb-log-file-size=32M \
    --innodb-flush-log-at-trx-commit=2 --innodb-doublewrite=0 --log-error=
