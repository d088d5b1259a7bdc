"""Load for the classic compose example: item pages, some more popular than others (so the cache has hits)."""

import random

from locust import FastHttpUser, between, task


class Visitor(FastHttpUser):
    """Reads item pages, 50 items, the low numbers most often."""

    wait_time = between(0.01, 0.05)

    @task
    def item(self) -> None:
        number = min(int(random.expovariate(0.1)), 49)
        self.client.get(f"/item/{number}", name="/item/N")
