"""The hello stack's own scenario (`examples/stacks/hello/locustfile.py`), no think time: a request always in flight."""

from bundled import scenario
from locust import constant

_scenario = scenario("examples/stacks/hello/locustfile.py")


class ZeroThinkVisitor(_scenario.Visitor):
    """`Visitor`'s tasks, back to back."""

    wait_time = constant(0)
