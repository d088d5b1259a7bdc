"""Every built-in and example stack at four times its concurrency, with no think time: every user is answered.

A server that binds a worker to a connection (php-fpm behind kept-alive FastCGI, a thread per kept-alive
connection) leaves the users beyond its workers waiting, and their requests vanish from the window. Each stack
here runs 16 users of its own scenario with no think time (`tests/locustfiles/`) against at most 4 workers: the
shop's monolith (4 processes) and microservices (4 services), sleepy's and hello's single process. WordPress (4
php-fpm children) is checked in `test_wordpress.py` and `test_wordpress_compose.py`, on their deployments.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, farm, stray_processes
from tests.integration.readers import assert_every_user_answered

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("nginx_available")]
STACKS = {
    "shop": (ROOT / "stacks" / "shop", ", architecture: [monolith, microservices]"),
    "sleepy": (ROOT / "stacks" / "sleepy", ""),
    "hello": (ROOT / "examples" / "stacks" / "hello", ""),
}
SWEEP = """
name: four-times-{name}
stack: {stack}
matrix: {{users: [16]{matrix}}}
load: {{spawn_rate: 16, duration: 4s, warmup: 2s, locustfile: {locustfile}}}
"""


@pytest.mark.parametrize("name", list(STACKS))
def test_sixteen_users_with_no_think_time_are_all_answered(name: str, workdir: Path) -> None:
    # Given the stack's own scenario with no think time, 16 users against at most 4 workers
    stack, matrix = STACKS[name]
    locustfile = ROOT / "tests" / "locustfiles" / f"zero_think_{name}.py"
    (workdir / "sweep.yaml").write_text(SWEEP.format(name=name, stack=stack, matrix=matrix, locustfile=locustfile))
    # When the farm runs it
    run = farm("run", "sweep.yaml", cwd=workdir, timeout=240)
    # Then every cell is done and every user had answers all along: none stalled, Little's law holds, nothing
    # unfinished or failed
    assert run.returncode == 0, run.stdout + run.stderr
    cells = json.loads(farm("results", f"four-times-{name}", "--format", "json", cwd=workdir).stdout)
    assert len(cells) == (2 if name == "shop" else 1)
    for cell in cells:
        assert_every_user_answered(cell)
    assert stray_processes(str(workdir)) == []
