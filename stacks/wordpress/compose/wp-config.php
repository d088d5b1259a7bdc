<?php
/**
 * WordPress configuration of one compose deployment (uploaded as it is; the process recipe's, with the
 * database and the balancer reached by service name). Every instance reads this one file, so they
 * share the database, the keys and the salts. The keys are fixed: the site is throw-away and on loopback only.
 */
define('DB_NAME', 'wordpress');
define('DB_USER', 'wordpress');
define('DB_PASSWORD', 'wordpress');
define('DB_HOST', 'db:3306');
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');

define('AUTH_KEY',         'loadfarm-auth-key-7c1f0e6a9b2d4c3e8f5a');
define('SECURE_AUTH_KEY',  'loadfarm-secure-auth-key-2b8d6e4f1a9c');
define('LOGGED_IN_KEY',    'loadfarm-logged-in-key-5e3a7c9b1d2f4e6a');
define('NONCE_KEY',        'loadfarm-nonce-key-9f1b3d5e7a2c4e6b8d0f');
define('AUTH_SALT',        'loadfarm-auth-salt-3c5e7a9b1d2f4a6c8e0b');
define('SECURE_AUTH_SALT', 'loadfarm-secure-auth-salt-6a8c0e2b4d6f8a');
define('LOGGED_IN_SALT',   'loadfarm-logged-in-salt-1d3f5b7c9e2a4c6e');
define('NONCE_SALT',       'loadfarm-nonce-salt-8e0a2c4e6b8d1f3a5c7e');

$table_prefix = 'wp_';

// The site answers at whatever address it is reached by (the balancer, or one instance directly), so that
// WordPress never redirects a request for an instance to the balancer's address.
$farm_host = preg_replace('/[^A-Za-z0-9.:\[\]-]/', '', $_SERVER['HTTP_HOST'] ?? '')
    ?: 'balancer:8080';
define('WP_HOME', 'http://' . $farm_host);
define('WP_SITEURL', 'http://' . $farm_host);

define('DISABLE_WP_CRON', true);           // no loopback HTTP requests from inside page views
define('AUTOMATIC_UPDATER_DISABLED', true);
define('WP_AUTO_UPDATE_CORE', false);
define('DISALLOW_FILE_MODS', true);
define('WP_DEBUG', false);

if (!defined('ABSPATH')) {
    define('ABSPATH', __DIR__ . '/');
}
require_once ABSPATH . 'wp-settings.php';
