"""`farm run` follows a capacity search to its end: a sweep that looks finished ends the watch only when no next
step waits, whether the watch added that step or the worker that finished the last group did meanwhile."""

from __future__ import annotations

from farm.commands.running import _stepped


def test_a_step_the_worker_stored_meanwhile_keeps_the_watch_going() -> None:
    # Given a sweep that looked finished, whose worker stored the search's next probes before the watch's own step
    calls: list[str] = []

    def step() -> bool:
        calls.append("step")
        return False  # the same step, already stored: this call adds nothing

    def finished() -> bool:
        calls.append("status")
        return False  # a fresh read: the probes wait
    # Then the watch goes on, having read the status again after its step
    assert _stepped(step, finished) is True
    assert calls == ["step", "status"]


def test_the_watch_ends_when_no_step_is_added_and_nothing_waits() -> None:
    assert _stepped(lambda: False, lambda: True) is False


def test_a_step_added_here_keeps_the_watch_going_without_another_read() -> None:
    def finished() -> bool:
        raise AssertionError("not read: the step itself says the probes wait")

    assert _stepped(lambda: True, finished) is True
