"""`--max-cells` on `farm run` and `farm submit`: a too-large matrix is refused at once, in one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import farm

pytestmark = pytest.mark.integration

SWEEP = "name: big\nstack: sleepy\nmatrix:\n  users: [1, 2, 3]\n  delay_ms: [{delays}]\nload: {{duration: 1s}}\n"


def sweep_file(folder: Path, delays: int) -> Path:
    path = folder / "big.yaml"
    path.write_text(SWEEP.format(delays=", ".join(str(d) for d in range(1, delays + 1))))
    return path


@pytest.mark.parametrize("command", ["run", "submit"])
def test_max_cells_lowers_the_cap_and_the_refusal_names_the_flag(workdir: Path, command: str) -> None:
    # Given a sweep of 3 × 4 = 12 cells
    path = sweep_file(workdir, 4)
    # When it is run or submitted with a cap of 11 cells
    result = farm(command, str(path), "--max-cells", "11", cwd=workdir,
                  env={"FARM_BROKER_URL": "redis://127.0.0.1:9/0"} if command == "submit" else None)
    # Then it is refused before anything is stored, in one line saying how to raise the cap
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "12 cells" in lines[0] and "--max-cells 12" in lines[0], lines
    assert not (workdir / "farm.db").exists()


def test_the_default_cap_refuses_a_huge_matrix_at_once(workdir: Path) -> None:
    # Given a sweep of 3 × 40,000 = 120,000 cells, above the default cap of 100,000
    path = sweep_file(workdir, 40_000)
    # When it is run without --max-cells
    result = farm("run", str(path), cwd=workdir, timeout=60)
    # Then it is refused in one line, exit 2, before anything is stored
    assert result.returncode == 2, result.stderr
    assert "120000 cells" in result.stderr and "--max-cells" in result.stderr
    assert not (workdir / "farm.db").exists()
