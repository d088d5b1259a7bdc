#!/bin/sh
# Setup step: this deployment's WordPress folder, from Debian's package files (/usr/share/wordpress) — nothing
# downloaded, nothing written to /etc. WordPress looks for wp-config.php beside its own wp-load.php, and PHP
# resolves symlinks in __DIR__, so the top-level scripts are copied (a few small files) while wp-includes,
# wp-admin and the themes are linked. Every instance serves this one folder: the same config, keys and salts.
# Usage: site.sh SITE_DIR WP_CONFIG FARM_SETTINGS STACK_DIR
set -eu
site=$1 config=$2 settings=$3 stack=$4
wp=/usr/share/wordpress
[ -f "$wp/wp-settings.php" ] || { echo "WordPress is not installed in $wp (apt-get install wordpress)" >&2; exit 1; }
[ -d "$wp/wp-content/themes/twentytwentythree" ] || {
    echo "the twentytwentythree theme is missing (apt-get install wordpress-theme-twentytwentythree)" >&2; exit 1; }
rm -rf "$site"
mkdir -p "$site/wp-content/mu-plugins" "$site/wp-content/plugins" "$site/wp-content/uploads"
for file in "$wp"/*.php; do
    [ "$(basename "$file")" = wp-config.php ] || cp "$file" "$site/"
done
ln -s "$wp/wp-includes" "$site/wp-includes"
ln -s "$wp/wp-admin" "$site/wp-admin"
ln -s "$wp/wp-content/themes" "$site/wp-content/themes"
cp "$config" "$site/wp-config.php"
cp "$settings" "$site/farm-settings.php"
cp "$stack/php/object-cache.php" "$site/wp-content/object-cache.php"
cp "$stack/php/farm-site.php" "$site/wp-content/mu-plugins/farm-site.php"
cp "$stack/php/farm-endpoint.php" "$site/farm-endpoint.php"
echo "site folder ready: $site"
