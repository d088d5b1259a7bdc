"""The wordpress stack's own scenario (`locustfiles/wordpress.py`), no think time: a request always in flight."""

from bundled import scenario
from locust import constant

_scenario = scenario("locustfiles/wordpress.py")


class ZeroThinkReader(_scenario.Reader):
    """`Reader`'s tasks, back to back."""

    wait_time = constant(0)
