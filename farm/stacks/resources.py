"""The SUT's own resource use over a cell's measured window: CPU per container and for the whole host, peak memory.

Read on the SUT host from cgroup files (v2: ``cpu.stat`` usage_usec, ``memory.peak``; v1: ``cpuacct.usage``,
``memory.max_usage_in_bytes``; peak memory is since the container started) and ``/proc/stat`` at the
window's start and end — two cheap reads, nothing that samples continuously and disturbs the system under test.
"""

from __future__ import annotations

from typing import Any

SATURATED_PCT = 90.0

# A constant script (the project name arrives as "$1", never interpolated): one line per container,
# "container <name> <usage_usec> <memory_peak_bytes>" ("-" where the host's cgroups do not tell),
# then "host <unix time> <cores> <busy jiffies> <all jiffies>".
SAMPLE_SCRIPT = r"""
ids=$(docker ps -q --filter "label=com.docker.compose.project=$1")
if [ -n "$ids" ]; then
  docker inspect -f '{{.Name}} {{.State.Pid}}' $ids | while read -r name pid; do
    case "$name" in *-farm-probe-[0-9]*) continue;; esac   # the farm's own probe (compose_probe) is not the SUT
    usage=""; peak=""
    cg=$(sed -n 's/^0:://p' "/proc/$pid/cgroup" 2>/dev/null)
    if [ -f "/sys/fs/cgroup$cg/cpu.stat" ] && [ "$cg" != "/" ]; then          # cgroup v2
      usage=$(awk '/^usage_usec/ {print $2}' "/sys/fs/cgroup$cg/cpu.stat")
      peak=$(cat "/sys/fs/cgroup$cg/memory.peak" 2>/dev/null || cat "/sys/fs/cgroup$cg/memory.current" 2>/dev/null)
    else                                                                      # cgroup v1
      cpu=$(awk -F: '$2 ~ /(^|,)cpuacct(,|$)/ {print $3}' "/proc/$pid/cgroup" 2>/dev/null)
      mem=$(awk -F: '$2 == "memory" {print $3}' "/proc/$pid/cgroup" 2>/dev/null)
      for dir in /sys/fs/cgroup/cpuacct /sys/fs/cgroup/cpu,cpuacct /sys/fs/cgroup/cpuacct,cpu; do
        if [ -f "$dir$cpu/cpuacct.usage" ]; then usage=$(( $(cat "$dir$cpu/cpuacct.usage") / 1000 )); break; fi
      done
      peak=$(cat "/sys/fs/cgroup/memory$mem/memory.max_usage_in_bytes" 2>/dev/null)
    fi
    echo "container ${name#/} ${usage:--} ${peak:--}"
  done
fi
awk -v now="$(date +%s.%N)" -v cores="$(nproc)" '/^cpu / {busy=$2+$3+$4+$7+$8+$9; all=busy+$5+$6;
  print "host", now, cores, busy, all}' /proc/stat
"""


def parse_sample(text: str) -> dict[str, Any]:
    """A sample as printed by SAMPLE_SCRIPT."""
    sample: dict[str, Any] = {"containers": {}}
    for line in text.splitlines():
        parts = line.split()
        try:
            if parts[:1] == ["container"] and len(parts) == 4:
                sample["containers"][parts[1]] = {"usage_usec": _number(parts[2]), "memory_bytes": _number(parts[3])}
            elif parts[:1] == ["host"] and len(parts) == 5:
                sample.update(time=float(parts[1]), cores=int(parts[2]), busy=int(parts[3]), all=int(parts[4]))
        except ValueError:
            continue
    return sample


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def window(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any] | None:
    """CPU seconds and % (of the host's cores) per container, the host's CPU %, and peak memory, between two samples."""
    if "time" not in before or "time" not in after or after["time"] <= before["time"]:
        return None
    seconds = after["time"] - before["time"]
    cores = max(1, int(after.get("cores", 1)))
    services: dict[str, dict[str, float | None]] = {}
    for name, end in after["containers"].items():
        start = before["containers"].get(name)
        if start is None:
            continue
        memory = end["memory_bytes"]
        if end["usage_usec"] is None or start["usage_usec"] is None:
            services[name] = {"cpu_s": None, "cpu_pct": None, "memory_peak_mb": None}
            continue
        cpu_s = max(0, end["usage_usec"] - start["usage_usec"]) / 1e6
        services[name] = {"cpu_s": round(cpu_s, 3), "cpu_pct": round(100 * cpu_s / seconds / cores, 1),
                          "memory_peak_mb": None if memory is None else round(memory / 2**20, 1)}
    spent = after["all"] - before["all"]
    host_pct = round(100 * (after["busy"] - before["busy"]) / spent, 1) if spent > 0 else None
    return {"window_s": round(seconds, 3), "cores": cores, "host_cpu_pct": host_pct,
            "cpu_s": round(sum(s["cpu_s"] or 0 for s in services.values()), 3),
            "saturated": host_pct is not None and host_pct >= SATURATED_PCT, "services": services}
