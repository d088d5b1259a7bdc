"""Load for stacks/sleepy: one endpoint, users that wait a little between requests."""

from locust import FastHttpUser, between, task


class Caller(FastHttpUser):
    """Calls the sleepy endpoint."""

    wait_time = between(0.05, 0.1)

    @task
    def call(self) -> None:
        self.client.get("/")
