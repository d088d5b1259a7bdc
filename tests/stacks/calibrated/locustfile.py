"""Load for the calibrated stack: users with no think time, so each of them always has one request in flight."""

from locust import FastHttpUser, constant, task


class Caller(FastHttpUser):
    """Calls the stack's one endpoint, again as soon as it answers."""

    wait_time = constant(0)

    @task
    def call(self) -> None:
        self.client.get("/")
