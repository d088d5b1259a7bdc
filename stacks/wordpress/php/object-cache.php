<?php
/**
 * Loadfarm's object-cache drop-in (wp-content/object-cache.php): WordPress's object cache kept in APCu inside
 * each instance (cache: local), in one Redis shared by every instance (cache: shared), or only for the length of
 * a request, as WordPress does without a drop-in (none, page).
 *
 * It counts the persistent cache's hits and misses (a lookup the request's own copy could not answer) and the
 * instance's requests, in APCu, which is per instance (one php-fpm master each): farm-endpoint.php reports them.
 */

defined('ABSPATH') || exit;

final class Farm_Object_Cache
{
    /** @var array<string, array<string, mixed>> the request's own copy: group => key => value */
    public $cache = [];
    public $cache_hits = 0;
    public $cache_misses = 0;
    /** @var string none | local | shared */
    public $mode = 'none';
    private $global_groups = [];
    private $non_persistent = [];
    private $blog_prefix = '1:';
    /** @var Redis|null */
    private $redis = null;

    public function __construct()
    {
        $settings = require ABSPATH . 'farm-settings.php';
        $mode = defined('FARM_SETUP') ? 'none' : $settings['cache'];
        if ($mode === 'local' && function_exists('apcu_enabled') && apcu_enabled()) {
            $this->mode = 'local';
        } elseif ($mode === 'shared') {
            $this->redis = new Redis();
            // One persistent connection per php-fpm child; a Redis that is down fails the request loudly.
            $this->redis->pconnect('127.0.0.1', (int) $settings['redis_port'], 2.0);
            $this->mode = 'shared';
        }
    }

    private function key($key, $group)
    {
        $prefix = isset($this->global_groups[$group]) ? '' : $this->blog_prefix;
        return "wp:$prefix$group:$key";
    }

    private function persistent($group)
    {
        return $this->mode !== 'none' && !isset($this->non_persistent[$group]);
    }

    private static function copy($value)
    {
        return is_object($value) ? clone $value : $value;
    }

    public function get($key, $group = 'default', $force = false, &$found = null)
    {
        $group = $group === '' ? 'default' : $group;
        $key = (string) $key;
        if (!$force && isset($this->cache[$group]) && array_key_exists($key, $this->cache[$group])) {
            $found = true;
            return self::copy($this->cache[$group][$key]);
        }
        $found = false;
        if (!$this->persistent($group)) {
            return false;
        }
        $id = $this->key($key, $group);
        if ($this->mode === 'local') {
            $value = apcu_fetch($id, $found);
        } else {
            $raw = $this->redis->get($id);
            $found = is_string($raw);
            $value = $found ? unserialize($raw) : false;
        }
        if (!$found) {
            $this->cache_misses++;
            return false;
        }
        $this->cache_hits++;
        $this->cache[$group][$key] = $value;
        return self::copy($value);
    }

    public function set($key, $data, $group = 'default', $expire = 0)
    {
        $group = $group === '' ? 'default' : $group;
        $key = (string) $key;
        $this->cache[$group][$key] = self::copy($data);
        if (!$this->persistent($group)) {
            return true;
        }
        $id = $this->key($key, $group);
        $expire = max(0, (int) $expire);
        if ($this->mode === 'local') {
            return apcu_store($id, $data, $expire);
        }
        $raw = serialize($data);
        return $expire > 0 ? $this->redis->setex($id, $expire, $raw) : $this->redis->set($id, $raw);
    }

    public function add($key, $data, $group = 'default', $expire = 0)
    {
        if (function_exists('wp_suspend_cache_addition') && wp_suspend_cache_addition()) {
            return false;
        }
        $this->get($key, $group, false, $found);
        return $found ? false : $this->set($key, $data, $group, $expire);
    }

    public function replace($key, $data, $group = 'default', $expire = 0)
    {
        $this->get($key, $group, false, $found);
        return $found ? $this->set($key, $data, $group, $expire) : false;
    }

    public function delete($key, $group = 'default')
    {
        $group = $group === '' ? 'default' : $group;
        $key = (string) $key;
        $had = isset($this->cache[$group]) && array_key_exists($key, $this->cache[$group]);
        unset($this->cache[$group][$key]);
        if (!$this->persistent($group)) {
            return $had;
        }
        $id = $this->key($key, $group);
        return $this->mode === 'local' ? apcu_delete($id) : (bool) $this->redis->del($id);
    }

    public function incr($key, $offset = 1, $group = 'default')
    {
        $value = $this->get($key, $group, false, $found);
        if (!$found) {
            return false;
        }
        $value = max(0, (is_numeric($value) ? (int) $value : 0) + (int) $offset);
        $this->set($key, $value, $group);
        return $value;
    }

    public function flush()
    {
        $this->cache = [];
        if ($this->mode === 'local') {
            apcu_clear_cache();
        } elseif ($this->mode === 'shared') {
            $this->redis->flushDb();
        }
        return true;
    }

    public function flush_runtime()
    {
        $this->cache = [];
        return true;
    }

    public function add_global_groups($groups)
    {
        foreach ((array) $groups as $group) {
            $this->global_groups[$group] = true;
        }
    }

    public function add_non_persistent_groups($groups)
    {
        foreach ((array) $groups as $group) {
            $this->non_persistent[$group] = true;
        }
    }

    public function switch_to_blog($blog_id)
    {
        $this->blog_prefix = ((int) $blog_id) . ':';
    }

    /** Add this request's counts to the instance's counters (APCu is per instance in every mode). */
    public function close()
    {
        if (defined('FARM_SETUP') || !function_exists('apcu_enabled') || !apcu_enabled()) {
            return true;
        }
        apcu_inc('farm:requests', 1);
        if ($this->cache_hits > 0) {
            apcu_inc('farm:hits', $this->cache_hits);
        }
        if ($this->cache_misses > 0) {
            apcu_inc('farm:misses', $this->cache_misses);
        }
        $this->cache_hits = $this->cache_misses = 0;
        return true;
    }

    public function stats()
    {
        echo "<p>mode {$this->mode}: {$this->cache_hits} hits, {$this->cache_misses} misses</p>";
    }
}

function wp_cache_init()
{
    $GLOBALS['wp_object_cache'] = new Farm_Object_Cache();
}

function wp_cache_get($key, $group = '', $force = false, &$found = null)
{
    return $GLOBALS['wp_object_cache']->get($key, $group, $force, $found);
}

function wp_cache_get_multiple($keys, $group = '', $force = false)
{
    $values = [];
    foreach ($keys as $key) {
        $values[$key] = $GLOBALS['wp_object_cache']->get($key, $group, $force);
    }
    return $values;
}

function wp_cache_set($key, $data, $group = '', $expire = 0)
{
    return $GLOBALS['wp_object_cache']->set($key, $data, $group, (int) $expire);
}

function wp_cache_set_multiple(array $data, $group = '', $expire = 0)
{
    $done = [];
    foreach ($data as $key => $value) {
        $done[$key] = $GLOBALS['wp_object_cache']->set($key, $value, $group, (int) $expire);
    }
    return $done;
}

function wp_cache_add($key, $data, $group = '', $expire = 0)
{
    return $GLOBALS['wp_object_cache']->add($key, $data, $group, (int) $expire);
}

function wp_cache_add_multiple(array $data, $group = '', $expire = 0)
{
    $done = [];
    foreach ($data as $key => $value) {
        $done[$key] = $GLOBALS['wp_object_cache']->add($key, $value, $group, (int) $expire);
    }
    return $done;
}

function wp_cache_replace($key, $data, $group = '', $expire = 0)
{
    return $GLOBALS['wp_object_cache']->replace($key, $data, $group, (int) $expire);
}

function wp_cache_delete($key, $group = '')
{
    return $GLOBALS['wp_object_cache']->delete($key, $group);
}

function wp_cache_delete_multiple(array $keys, $group = '')
{
    $done = [];
    foreach ($keys as $key) {
        $done[$key] = $GLOBALS['wp_object_cache']->delete($key, $group);
    }
    return $done;
}

function wp_cache_incr($key, $offset = 1, $group = '')
{
    return $GLOBALS['wp_object_cache']->incr($key, $offset, $group);
}

function wp_cache_decr($key, $offset = 1, $group = '')
{
    return $GLOBALS['wp_object_cache']->incr($key, -$offset, $group);
}

function wp_cache_flush()
{
    return $GLOBALS['wp_object_cache']->flush();
}

function wp_cache_flush_runtime()
{
    return $GLOBALS['wp_object_cache']->flush_runtime();
}

function wp_cache_supports($feature)
{
    return in_array($feature, ['add_multiple', 'set_multiple', 'get_multiple', 'delete_multiple',
        'flush_runtime'], true);
}

function wp_cache_close()
{
    return $GLOBALS['wp_object_cache']->close();
}

function wp_cache_add_global_groups($groups)
{
    $GLOBALS['wp_object_cache']->add_global_groups($groups);
}

function wp_cache_add_non_persistent_groups($groups)
{
    $GLOBALS['wp_object_cache']->add_non_persistent_groups($groups);
}

function wp_cache_switch_to_blog($blog_id)
{
    $GLOBALS['wp_object_cache']->switch_to_blog($blog_id);
}

function wp_cache_reset()
{
    $GLOBALS['wp_object_cache']->flush_runtime();
}
