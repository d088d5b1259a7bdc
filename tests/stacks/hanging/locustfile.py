"""Load for the hanging stack: users that think 0.1-0.3 s between requests to its one endpoint."""

from locust import FastHttpUser, between, task


class Caller(FastHttpUser):
    """Calls the stack's one endpoint."""

    wait_time = between(0.1, 0.3)

    @task
    def call(self) -> None:
        self.client.get("/")
