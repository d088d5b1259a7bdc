"""The calibrated stack's capacity model (``model: capacity``) in closed form: which configuration meets the SLO
at a load, the cheapest one per architecture, and the load from which microservices' cheapest costs less.

Each replica of a service of capacity c answers within ``base_ms`` (plus the hops) while at most c requests are in
flight on it (the arriving one included), and adds ``penalty_ms`` to every request that arrives above that. With
the calibration locustfile (no think time) U users keep U requests in flight; every request passes through every
service of its architecture, each holding it until the services behind it answer (the monolith: ``app``;
microservices: ``front`` → ``hot`` → ``cold``), and round-robin spreads them evenly, so a service of r replicas
has U / r in flight on each. A configuration meets the SLO (p95 ≤ `SLO_P95_MS`) exactly when every service has
U / r ≤ c, i.e. r ≥ ceil(U / c): the cheapest configuration runs ceil(U / c) replicas of each service, and costs
Σ ceil(U / c) × cost per replica (``app_cost`` for the monolith's app, 1 for each microservice).

With the defaults (app: capacity 10, cost 2; front and cold: 60, hot: 10, cost 1 each) the monolith costs
2·ceil(U/10) and microservices 2·ceil(U/60) + ceil(U/10): the monolith is cheaper up to 10 users, they cost the
same from 11 to 20, and microservices are cheaper from 21 users on (`switch_users` = 21). With every capacity 10
(`NEVER`) microservices cost 3·ceil(U/10) against the monolith's 2·ceil(U/10): they never win.

Which service is the bottleneck also shows in the CPU the farm measures: each request burns ``cpu_work / c`` ms of
CPU in a service of capacity c (default 20: 2 ms in hot and app, 0.33 ms in front and cold), on top of ~0.4–0.8 ms
of HTTP handling per service (measured on the 2-core development machine: front 1.1, hot 3.0 over its 2
replicas, cold 0.9 ms per request at 15 users). Per replica and unit of cost, hot leads the others as long as it
runs at most 2 replicas, i.e. at loads up to 30 users with the defaults; raise ``cpu_work`` for a search at
higher loads (it costs CPU the machine shares with the load generator).

Loads for a test are best chosen away from a capacity's multiples (U / r within ~15% of c is where round-robin's
momentary imbalance decides), e.g. 5, 15, 25 users with the defaults.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

SERVICES: dict[str, tuple[str, ...]] = {"monolith": ("app",), "microservices": ("front", "hot", "cold")}
DEFAULTS: dict[str, float] = {"app_capacity": 10, "app_cost": 2, "front_capacity": 60, "hot_capacity": 10,
                              "cold_capacity": 60, "base_ms": 200.0, "penalty_ms": 300.0}
NEVER: dict[str, float] = {"front_capacity": 10, "hot_capacity": 10, "cold_capacity": 10}
# Under capacity a request takes base_ms (200) + hops and Locust's 10 ms bucket; above it at least 500 ms.
SLO_P95_MS = 350.0


def _value(params: Mapping[str, object] | None, key: str) -> float:
    value = (params or {}).get(key, DEFAULTS[key])
    return float(value) if isinstance(value, int | float) else DEFAULTS[key]


def capacity(service: str, params: Mapping[str, object] | None = None) -> int:
    """Requests in flight one replica of ``service`` takes before it slows down."""
    return int(_value(params, f"{service}_capacity"))


def cost_per_replica(service: str, params: Mapping[str, object] | None = None) -> float:
    """What one replica costs (the manifest's ``scalable`` costs): the monolith's app ``app_cost``, others 1."""
    return _value(params, "app_cost") if service == "app" else 1.0


def meets(architecture: str, replicas: Mapping[str, int], users: float,
          params: Mapping[str, object] | None = None) -> bool:
    """Whether a configuration (replicas per service; 1 where not given) meets the SLO at ``users``."""
    return all(users / replicas.get(s, 1) <= capacity(s, params) for s in SERVICES[architecture])


def cheapest(architecture: str, users: float,
             params: Mapping[str, object] | None = None) -> tuple[dict[str, int], float]:
    """The cheapest configuration that meets the SLO at ``users``: replicas per service, and its cost."""
    replicas = {s: max(1, math.ceil(users / capacity(s, params))) for s in SERVICES[architecture]}
    return replicas, sum(r * cost_per_replica(s, params) for s, r in replicas.items())


def cheaper(users: float, params: Mapping[str, object] | None = None) -> str | None:
    """The architecture whose cheapest SLO-meeting configuration costs less at ``users``; None when equal."""
    mono, micro = cheapest("monolith", users, params)[1], cheapest("microservices", users, params)[1]
    return None if mono == micro else "monolith" if mono < micro else "microservices"


def switch_users(params: Mapping[str, object] | None = None, loads: Iterable[int] = range(1, 241)) -> int | None:
    """The lowest of ``loads`` from which microservices are cheaper at every higher one of them; None if never."""
    ordered = sorted(loads)
    found = None
    for users in reversed(ordered):
        if cheaper(users, params) != "microservices":
            break
        found = users
    return found
