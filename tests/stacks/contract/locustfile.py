"""Load for the contract test stack: one GET, no think time to speak of."""

from locust import FastHttpUser, constant, task


class Caller(FastHttpUser):
    """Calls the stack's one endpoint."""

    wait_time = constant(0.02)

    @task
    def call(self) -> None:
        self.client.get("/")
