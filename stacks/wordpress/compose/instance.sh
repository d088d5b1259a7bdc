#!/bin/sh
# One WordPress instance (a replica of `wordpress`): php-fpm and nginx, as in the process recipe.
# Arguments: every replica's container name, in order. Scaled replicas are identical, so a container learns its
# index by finding its own address among their names (Docker's DNS); replica 0 flushes the shared Redis and
# reports the balancer's page cache, as instance 0 does in the process recipe.
set -eu
me=$(hostname -i | tr ' ' '\n' | head -n 1)
index=0
FARM_REPLICA=
for name in "$@"; do
    if getent hosts "$name" | cut -d' ' -f1 | grep -qxF "$me"; then
        FARM_REPLICA=$index
        break
    fi
    index=$((index + 1))
done
[ -n "$FARM_REPLICA" ] || { echo "instance.sh: $me is none of the replicas $*" >&2; exit 1; }
export FARM_REPLICA
fpm=$(ls /usr/sbin/php-fpm* /usr/local/sbin/php-fpm 2>/dev/null | sort -V | tail -n 1)
"$fpm" --allow-to-run-as-root --fpm-config /etc/farm/php-fpm.conf
exec nginx -c /etc/farm/instance.conf -g "daemon off;"
