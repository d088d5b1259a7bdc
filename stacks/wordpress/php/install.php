<?php
/**
 * Setup step: install WordPress into the deployment's database and seed it — the same posts, pages, categories
 * and comments in every cell (a fixed random seed, fixed dates, fixed ids), in one PHP process and a few
 * multi-row inserts rather than hundreds of wp-cli calls.
 *
 * Usage: php install.php SITE_DIR POSTS
 * Ids: post i (1..POSTS) has id i, page j (1..10) has id POSTS + j; categories farm-1..farm-5.
 */

if ($argc !== 3 || !ctype_digit($argv[2])) {
    fwrite(STDERR, "usage: php install.php SITE_DIR POSTS\n");
    exit(2);
}
[$_, $site, $posts] = $argv;
$posts = (int) $posts;
const PAGES = 10;
const CATEGORIES = 5;

define('FARM_SETUP', true);          // the object cache stays in memory (Redis is not up yet)
define('WP_INSTALLING', true);
$_SERVER['HTTP_HOST'] = '';           // wp-config.php then names the balancer's address
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';

function wp_mail() { return true; }  // the install's notice e-mail goes nowhere (pluggable, defined first)

require $site . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';

$started = microtime(true);
// The admin's password: random per deployment, never written down (the farm never logs in; nobody else may).
$result = wp_install('Loadfarm WordPress', 'admin', 'admin@example.invalid', true, '', bin2hex(random_bytes(24)));
if (is_wp_error($result)) {
    fwrite(STDERR, 'install failed: ' . $result->get_error_message() . "\n");
    exit(1);
}
global $wpdb;
// A known site: no sample post, page or privacy draft (their dates would be "now").
$wpdb->query("DELETE FROM {$wpdb->posts}");
$wpdb->query("DELETE FROM {$wpdb->postmeta}");
$wpdb->query("DELETE FROM {$wpdb->comments}");
$wpdb->query("DELETE FROM {$wpdb->term_relationships}");
foreach ([
    'comment_moderation' => 0, 'comment_previously_approved' => 0, 'comments_notify' => 0,
    'moderation_notify' => 0, 'require_name_email' => 1, 'default_comment_status' => 'open',
    'close_comments_for_old_posts' => 0, 'page_comments' => 0, 'thread_comments' => 1, 'show_avatars' => 0,
    'posts_per_page' => 10, 'permalink_structure' => '', 'blog_public' => 1, 'timezone_string' => 'UTC',
    'wp_page_for_privacy_policy' => 0, 'show_on_front' => 'posts', 'comment_max_links' => 10,
] as $name => $value) {
    update_option($name, $value);
}

mt_srand(20240101);
$words = explode(' ', 'load farm cache redis apcu nginx worker instance latency throughput request queue '
    . 'server client user sweep cell warmup window percentile median bootstrap interval crossover scale '
    . 'database index query page post comment archive search balance upstream socket process memory disk '
    . 'network packet thread lock shard replica leader follower commit rollback snapshot backup restore');
$text = static function (int $n) use ($words): string {
    $out = [];
    for ($i = 0; $i < $n; $i++) {
        $out[] = $words[mt_rand(0, count($words) - 1)];
    }
    return implode(' ', $out);
};
$paragraphs = static function (int $n) use ($text): string {
    $out = [];
    for ($i = 0; $i < $n; $i++) {
        $out[] = "<!-- wp:paragraph -->\n<p>" . ucfirst($text(mt_rand(40, 90))) . ".</p>\n<!-- /wp:paragraph -->";
    }
    return implode("\n\n", $out);
};

$categories = [];
for ($c = 1; $c <= CATEGORIES; $c++) {
    $term = wp_insert_term("Topic $c", 'category', ['slug' => "farm-$c"]);
    $categories[] = (int) $term['term_taxonomy_id'];
}

$rows = [];
$relations = [];
$comments = [];
$base = strtotime('2024-01-01 08:00:00 UTC');
$total = $posts + PAGES;
for ($id = 1; $id <= $total; $id++) {
    $page = $id > $posts;
    $title = $page ? 'Page ' . ($id - $posts) . ': ' . ucfirst($text(3)) : "Post $id: " . ucfirst($text(mt_rand(3, 7)));
    $date = gmdate('Y-m-d H:i:s', $base + $id * 7919 * 60);  // spread over months: archives have pages
    $slug = $page ? 'page-' . ($id - $posts) : "post-$id";
    $content = $paragraphs(mt_rand(3, 8));
    $rows[] = $wpdb->prepare('(%d,1,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,0,%s,%s,%s,%s)', $id, $date, $date,
        $content, $title, '', 'publish', 'open', 'open', $slug, '', '', $date, $date, home_url("/?p=$id"),
        $page ? 'page' : 'post', '', '');
    if (!$page) {
        $relations[] = $wpdb->prepare('(%d,%d)', $id, $categories[$id % CATEGORIES]);
        for ($k = 0, $n = mt_rand(0, 6); $k < $n; $k++) {
            $at = gmdate('Y-m-d H:i:s', $base + $id * 7919 * 60 + ($k + 1) * 3600);
            $comments[] = $wpdb->prepare('(%d,%s,%s,%s,%s,%s,%s,%s,0,%s,%s,%s,0,0)', $id, 'Reader ' . mt_rand(1, 500),
                'reader@example.invalid', '', '127.0.0.1', $at, $at, ucfirst($text(mt_rand(8, 40))) . '.', '1',
                'Loadfarm', 'comment');
        }
    }
}
$columns = '(ID,post_author,post_date,post_date_gmt,post_content,post_title,post_excerpt,post_status,'
    . 'comment_status,ping_status,post_name,to_ping,pinged,post_modified,post_modified_gmt,post_parent,guid,'
    . 'post_type,post_mime_type,post_content_filtered)';
// Columns and values must line up: post_content_filtered is the last column.
foreach (array_chunk($rows, 200) as $chunk) {
    $wpdb->query("INSERT INTO {$wpdb->posts} $columns VALUES " . implode(',', $chunk)) !== false
        || exit("inserting posts failed: {$wpdb->last_error}\n");
}
foreach (array_chunk($relations, 500) as $chunk) {
    $wpdb->query("INSERT INTO {$wpdb->term_relationships} (object_id,term_taxonomy_id) VALUES "
        . implode(',', $chunk));
}
foreach (array_chunk($comments, 500) as $chunk) {
    $wpdb->query("INSERT INTO {$wpdb->comments} (comment_post_ID,comment_author,comment_author_email,"
        . 'comment_author_url,comment_author_IP,comment_date,comment_date_gmt,comment_content,comment_karma,'
        . 'comment_approved,comment_agent,comment_type,comment_parent,user_id) VALUES ' . implode(',', $chunk))
        !== false || exit("inserting comments failed: {$wpdb->last_error}\n");
}
$wpdb->query("UPDATE {$wpdb->posts} p SET comment_count = "
    . "(SELECT COUNT(*) FROM {$wpdb->comments} c WHERE c.comment_post_ID = p.ID AND c.comment_approved = '1')");
$wpdb->query("ALTER TABLE {$wpdb->posts} AUTO_INCREMENT = " . ($total + 1));
wp_update_term_count_now($categories, 'category');
$uncategorized = get_term_by('slug', 'uncategorized', 'category');
if ($uncategorized) {
    wp_update_term_count_now([(int) $uncategorized->term_taxonomy_id], 'category');
}

printf("installed: %d posts, %d pages, %d comments in %.1f s\n", $posts, PAGES, count($comments),
    microtime(true) - $started);
