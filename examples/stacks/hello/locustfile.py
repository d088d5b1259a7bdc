"""Load for the hello stack: one page, a short think time."""

from locust import FastHttpUser, between, task


class Visitor(FastHttpUser):
    """Reads the page."""

    wait_time = between(0.05, 0.1)

    @task
    def page(self) -> None:
        self.client.get("/")
