<?php
/**
 * Plugin Name: Loadfarm site rules
 * Description: What a load test from one address needs: every simulated reader posts from 127.0.0.1, so the
 * comment-flood check (one comment per 15 s per address) is off; nothing calls out of the machine.
 */

defined('ABSPATH') || exit;

remove_action('check_comment_flood', 'check_comment_flood_db', 10);
add_filter('wp_is_comment_flood', '__return_false', 99);
add_filter('pre_http_request', static function () {
    return new WP_Error('farm_offline', 'outgoing HTTP is disabled in a load-test stack');
}, 99);
add_filter('pre_wp_mail', '__return_false', 99);
