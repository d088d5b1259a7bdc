#!/bin/sh
# Debian names php-fpm after its PHP version (php-fpm8.2 on Debian 12): run the newest one installed.
set -eu
fpm=$(ls /usr/sbin/php-fpm* 2>/dev/null | sort -V | tail -n 1)
[ -n "$fpm" ] || { echo "php-fpm is not installed (apt-get install php-fpm)" >&2; exit 127; }
exec "$fpm" "$@"
