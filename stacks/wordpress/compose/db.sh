#!/bin/sh
# MariaDB in its container (the `debian` images): the datadir (a volume, new with every deployment) initialised on
# first start, the site's database and user from an init file the server runs before it accepts connections;
# the process recipe's settings, but listening on the project's network for the instances.
set -eu
datadir=/var/lib/farm-db
if [ ! -d "$datadir/mysql" ]; then
    chown mysql:mysql "$datadir"
    mariadb-install-db --no-defaults --datadir="$datadir" --user=mysql --skip-test-db \
        --auth-root-authentication-method=socket >/tmp/install.log 2>&1 || { tail -n 5 /tmp/install.log; exit 1; }
fi
exec mariadbd --no-defaults --datadir="$datadir" --user=mysql --port=3306 --bind-address=0.0.0.0 \
    --socket=/tmp/mariadbd.sock --pid-file=/tmp/mariadbd.pid --init-file=/etc/farm/db-init.sql \
    --skip-name-resolve --skip-log-bin --performance-schema=OFF --max-connections=300 \
    --innodb-buffer-pool-size=128M --innodb-log-file-size=32M --innodb-flush-log-at-trx-commit=2 \
    --innodb-doublewrite=0 --log-error=
