"""The sleepy stack's own scenario (`locustfiles/sleepy.py`), no think time: a request always in flight."""

from bundled import scenario
from locust import constant

_scenario = scenario("locustfiles/sleepy.py")


class ZeroThinkCaller(_scenario.Caller):
    """`Caller`'s tasks, back to back."""

    wait_time = constant(0)
