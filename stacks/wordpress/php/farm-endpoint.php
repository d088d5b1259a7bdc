<?php
/**
 * The farm's view of one instance, outside WordPress: GET = metrics (the README's contract: requests and
 * cache.{mode,hits,misses}), POST = reset (flush the object cache and the page cache, zero the counters).
 *
 * Counters live in this instance's APCu. The page cache (cache: page) is the balancer's: instance 0 reports its
 * hits and misses (from the balancer's cache-status log), counts its hits as requests, and empties it; Redis (cache: shared) is flushed once,
 * by instance 0 — the farm resets every instance, and each also empties its own APCu.
 */

// Only the farm may reset or read the counters: it sends its deployment's token, which only the [farm] pool's
// environment holds (a request for this file through the site's own pool finds none, and is refused too).
$token = (string) getenv('LOADFARM_TOKEN');
header('Cache-Control: no-store');  // never kept by the balancer's page cache
if ($token === '' || !hash_equals($token, (string) ($_SERVER['HTTP_X_FARM_TOKEN'] ?? ''))) {
    http_response_code(403);
    header('Content-Type: text/plain');
    echo "the farm's token is required\n";
    exit;
}

$settings = require __DIR__ . '/farm-settings.php';
$mode = $settings['cache'];
$first = getenv('FARM_REPLICA') === '0';
header('Content-Type: application/json');

if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    apcu_clear_cache();
    if ($mode === 'shared' && $first) {
        $redis = new Redis();
        $redis->connect('127.0.0.1', (int) $settings['redis_port'], 2.0);
        $redis->flushDb();
    }
    if ($mode === 'page' && $first) {
        farm_empty_page_cache($settings['page_cache_dir'], $settings['page_cache_log']);
    }
    echo json_encode(['reset' => true, 'mode' => $mode]);
    exit;
}

$requests = (int) apcu_fetch('farm:requests');
$hits = (int) apcu_fetch('farm:hits');
$misses = (int) apcu_fetch('farm:misses');
if ($mode === 'page') {
    [$hits, $misses] = $first ? farm_page_counts($settings['page_cache_log']) : [0, 0];
    // The balancer answered its hits on the instances' behalf: counted here, the instances' requests add up to
    // the client's (the farm compares the two counts).
    $requests += $hits;
}
echo json_encode([
    'requests' => $requests,
    'cache' => ['mode' => $mode, 'hits' => $hits, 'misses' => $misses],
    'instance' => (int) getenv('FARM_REPLICA'),
    'apcu_entries' => (int) (apcu_cache_info(true)['num_entries'] ?? 0),
]);

/** Remove the balancer's cached pages (nginx treats a missing file as a miss) and start a new status log. */
function farm_empty_page_cache(string $dir, string $log): void
{
    if (is_dir($dir)) {
        $files = new RecursiveIteratorIterator(new RecursiveDirectoryIterator($dir, FilesystemIterator::SKIP_DOTS),
            RecursiveIteratorIterator::CHILD_FIRST);
        foreach ($files as $file) {
            $file->isFile() ? @unlink($file->getPathname()) : null;
        }
    }
    if (is_file($log)) {
        file_put_contents($log, '');  // nginx appends (O_APPEND): the next line lands at the new end
    }
}

/** Hits and misses of the balancer's page cache: one $upstream_cache_status per proxied request. */
function farm_page_counts(string $log): array
{
    $text = is_file($log) ? (string) file_get_contents($log) : '';
    $hits = substr_count($text, "HIT\n") + substr_count($text, "STALE\n") + substr_count($text, "UPDATING\n")
        + substr_count($text, "REVALIDATED\n");
    $misses = substr_count($text, "MISS\n") + substr_count($text, "EXPIRED\n") + substr_count($text, "BYPASS\n");
    return [$hits, $misses];
}
