"""The shop stack's own scenario (`locustfiles/shop.py`), no think time: a request always in flight."""

from bundled import scenario
from locust import constant

_scenario = scenario("locustfiles/shop.py")


class ZeroThinkShopper(_scenario.Shopper):
    """`Shopper`'s tasks, back to back."""

    wait_time = constant(0)
