"""Fuzzing sweep files: every mutant either loads or is refused with one `SpecError` line — and `farm run` says
that line on stderr, exits 2, prints no traceback and writes no database.

The mutants are generated from a fixed seed (the same files on every run) out of the shipped examples and a few
valid variants: wrong types, unknown keys, deleted keys, junk strings (control characters, Rich markup, mathtext,
unicode), huge lists, deep nesting, non-UTF-8 bytes, truncation, alias bombs.
"""

from __future__ import annotations

import copy
import os
import random
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from farm.errors import SpecError
from farm.spec import load_sweep
from tests.conftest import ROOT

SEED = 20261130
MUTANTS = 1200
CLI_SAMPLE = 400  # refused mutants also run through `farm run` in-process (~20 ms each, mostly building the CLI)
KINDS = ("unknown key", "required but missing", "not a UTF-8 text file", "not valid YAML", "nested too deeply",
         "once aliases are expanded", "must be a finite number", "must be a single value",
         "must not contain control characters", "is not allowed for stack")

JUNK: list[Any] = [
    None, True, False, 0, -1, -0.0, 1.5, 10**30, 2**63, float("inf"), float("-inf"), float("nan"),
    "", " ", "[/bold]x", "[red]red[/]", "[link=file:///etc/passwd]x[/link]", r"$\frac{1}{0}$", "$x^2$", r"\frac",
    "a\nb", "\x00", "\x1b[31mred\x1b[0m", "tab\there", "\r", "é漢字🙂", "\u202eevil", "line\u2028sep", "\ufeff",
    "x" * 5000, "1e400", ".inf", "nan", "15 parsecs", "-5s", "0s", "25h", "1h30m", "10", "{{ params.cache }}",
    "<script>alert(1)</script>", "../../etc/passwd", "~root", "/dev/zero", "/", ".", "shop\n", "shop ",
    [], {}, [[1, 2]], {"a": {"b": [1]}}, [None], ["$x$", "\n"], [1, 1], [0.5], [True], [-3], [100_001],
    {"users": [1]}, {"p95_ms": -1}, {"duration": ".inf"},
]
KEYS = ["colour", "users", "instances", "matrix", "load", "duration", "Name", "name ", "[/bold]", "$x$", "a\nb",
        "\x00", "é", "<<", "0", "exclude", "", "x" * 300]
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when present: fast, and no Python recursion
BYTES = [b"\xff", b"\xfe\xff", b"\x80", b"\xc3\x28", b"\xed\xa0\x80", b"\x00", b"\x1b", b"\x7f", b"\xf0\x28\x8c\x28"]


def seeds() -> list[dict[str, Any]]:
    """Valid sweeps to mutate: the shipped examples and variants that use every section."""
    quick = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    lab = yaml.safe_load((ROOT / "examples" / "lab.yaml").read_text())
    full = {**quick, "name": "full", "repetitions": 3, "description": "every section",
            "stop_when": {"error_ratio": 0.2, "p95_ms": 500}, "targets": ["lab1", "lab2"],
            "load": {"spawn_rate": 5.5, "duration": "1m", "warmup": 0, "processes": 2}}
    sleepy = {"name": "sleepy-1", "stack": "sleepy",
              "matrix": {"users": [1, 2, 4], "instances": [1, 2], "delay_ms": [10, 50]},
              "exclude": [{"instances": 2, "delay_ms": 10}], "load": {"duration": 5}}
    return [quick, lab, full, sleepy]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield (*prefix, i)
            yield from _paths(value, (*prefix, i))


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        doc = doc[part]
    return doc


def _mutate_data(rng: random.Random, doc: dict[str, Any]) -> str:
    """Apply one structural mutation in place; return its name."""
    paths = list(_paths(doc)) or [("name",)]
    path = rng.choice(paths)
    parent, last = _parent(doc, path), path[-1]
    op = rng.choice(["junk", "junk", "junk", "delete", "unknown", "rename", "huge", "deep", "duplicate"])
    if op == "junk":
        parent[last] = rng.choice(JUNK)
    elif op == "delete":
        del parent[last]
    elif op == "unknown":
        target = parent if isinstance(parent, dict) else doc
        target[rng.choice(KEYS)] = rng.choice(JUNK)
    elif op == "rename" and isinstance(parent, dict):
        parent[rng.choice(KEYS)] = parent.pop(last)
    elif op == "huge":
        # Mostly long enough to matter, rarely long enough to be slow to parse (PyYAML is pure Python here).
        n = 20_000 if rng.random() < 0.02 else rng.choice([100, 300, 1_000])
        parent[last] = rng.choice([list(range(1, n + 1)), [rng.choice(JUNK[:30])] * n, [f"v{i}" for i in range(n)]])
    elif op == "deep":
        value = parent[last]
        for _ in range(rng.choice([10, 63, 65, 100, 200])):
            value = [value] if rng.random() < 0.5 else {"k": value}
        parent[last] = value
    elif op == "duplicate" and isinstance(parent[last], list):
        parent[last] = parent[last] * 2
    else:
        parent[last] = rng.choice(JUNK)
    return op


def _mutate_bytes(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    """Apply one byte-level mutation; return its name and the new bytes."""
    op = rng.choice(["truncate", "bytes", "control", "binary", "bracket", "bomb", "tabs", "flip"])
    at = rng.randrange(len(data) + 1)
    if op == "truncate":
        return op, data[:at]
    if op == "bytes":
        return op, data[:at] + rng.choice(BYTES) + data[at:]
    if op == "control":
        return op, data[:at] + bytes([rng.choice([0, 7, 8, 11, 12, 27, 127])]) + data[at:]
    if op == "binary":
        return op, bytes(rng.randrange(256) for _ in range(rng.choice([16, 300, 4_000])))
    if op == "bracket":
        depth = rng.choice([70, 70, 70, 20_000])
        return op, data + b"\nnested: " + b"[" * depth + b"]" * depth + b"\n"
    if op == "bomb":
        lines = [b"a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
        lines += [f"a{i}: &a{i} [".encode() + b", ".join([f"*a{i - 1}".encode()] * 10) + b"]" for i in range(1, 9)]
        return op, b"\n".join(lines) + b"\n" + data
    if op == "tabs":
        return op, data.replace(b"  ", b"\t", rng.randrange(1, 4))
    flipped = bytearray(data or b"x")
    for _ in range(rng.randrange(1, 6)):
        flipped[rng.randrange(len(flipped))] = rng.randrange(256)
    return op, bytes(flipped)


def mutants() -> list[tuple[str, bytes]]:
    """`MUTANTS` (name, file content) pairs, the same on every run."""
    rng = random.Random(SEED)
    bases = seeds()
    out = []
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))  # PyYAML's dumper recurses once per level of the deep mutants
    try:
        for i in range(MUTANTS):
            out.append(_mutant(rng, bases, i))
    finally:
        sys.setrecursionlimit(limit)
    return out


def _mutant(rng: random.Random, bases: list[dict[str, Any]], i: int) -> tuple[str, bytes]:
    """One mutant: one to three structural mutations of a seed, then sometimes a byte-level one."""
    doc = copy.deepcopy(rng.choice(bases))
    ops = [_mutate_data(rng, doc) for _ in range(rng.choice([1, 1, 2, 3]))]
    data = yaml.dump(doc, Dumper=DUMPER, allow_unicode=rng.random() < 0.5, sort_keys=False).encode("utf-8")
    if rng.random() < 0.35:
        op, data = _mutate_bytes(rng, data)
        ops.append(op)
    return f"m{i:04d}-{'-'.join(ops)}.yaml", data


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every mutant written to a file and loaded: which were refused (with their message) and which loaded."""
    folder = tmp_path_factory.mktemp("fuzz")
    refused: dict[Path, str] = {}
    loaded: list[Path] = []
    crashed: list[str] = []
    for name, data in mutants():
        path = folder / name
        path.write_bytes(data)
        try:
            load_sweep(path)
        except SpecError as exc:
            refused[path] = str(exc)
        except Exception as exc:  # any other exception is the defect this test looks for
            crashed.append(f"{name}: {type(exc).__name__}: {str(exc)[:200]}")
        else:
            loaded.append(path)
    return {"refused": refused, "loaded": loaded, "crashed": crashed, "folder": folder}


def test_every_mutant_loads_or_is_refused_with_one_spec_error_line(fuzzed: dict[str, Any]) -> None:
    # Given 1,200 mutated sweep files; When each is loaded
    refused: dict[Path, str] = fuzzed["refused"]
    # Then nothing raised anything but SpecError, and each refusal is one line naming the file
    assert fuzzed["crashed"] == []
    assert len(refused) + len(fuzzed["loaded"]) == MUTANTS
    assert len(refused) >= 0.7 * MUTANTS  # the mutations do break most files
    for path, message in refused.items():
        assert message.startswith(str(path)), message
        assert len(message.splitlines()) == 1 and "\r" not in message, message
        assert len(message) < 600, message


def test_the_fuzz_covers_each_kind_of_damage(fuzzed: dict[str, Any]) -> None:
    messages = list(fuzzed["refused"].values())

    def some(fragment: str) -> bool:
        return any(fragment in m for m in messages)

    for fragment in KINDS:
        assert some(fragment), fragment


def cli_sample(refused: dict[Path, str]) -> list[Path]:
    """`CLI_SAMPLE` refused mutants, the same on every run: one of each kind of damage, the rest drawn at random."""
    ordered = sorted(refused)
    chosen = {next(p for p in ordered if kind in refused[p]) for kind in KINDS}
    rest = [p for p in ordered if p not in chosen]
    return sorted(chosen) + random.Random(SEED).sample(rest, min(len(rest), CLI_SAMPLE - len(chosen)))


def test_farm_run_refuses_rejected_mutants_with_exit_2_and_one_line(
        fuzzed: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from farm import cli

    # Given refused mutants and a database URL pointing at a file that does not exist yet
    database = tmp_path / "fuzz.db"
    monkeypatch.setenv("FARM_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.chdir(tmp_path)
    sample = cli_sample(fuzzed["refused"])
    assert len(sample) == CLI_SAMPLE
    for path in sample:
        # When `farm run MUTANT` runs through the console entry point
        monkeypatch.setattr(sys, "argv", ["farm", "run", str(path)])
        with pytest.raises(SystemExit) as info:
            cli.main()
        captured = capsys.readouterr()
        # Then it exits 2 with exactly the one error line on stderr and writes no database
        assert info.value.code == 2, (path.name, captured.err)
        lines = captured.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), (path.name, captured.err)
        assert "Traceback" not in captured.err + captured.out
        assert not database.exists(), path.name


WORST = {
    "binary.yaml": bytes(range(256)) * 8,
    "deep.yaml": b"name: deep\nstack: shop\nmatrix: " + b"[" * 50_000 + b"]" * 50_000 + b"\n",
    "infinite.yaml": b"name: inf\nstack: shop\nmatrix: {users: [1]}\nload: {duration: .inf}\n",
    "billion.yaml": ("name: huge\nstack: sleepy\nmatrix:\n  users: [" + ", ".join(map(str, range(1, 1001))) +
                     "]\n  instances: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n  delay_ms: [" +
                     ", ".join(map(str, range(1, 1001))) + "]\nrepetitions: 100\n").encode(),
    "laughs.yaml": b"\n".join([b"a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"] +
                              [f"a{i}: &a{i} [".encode() + b", ".join([f"*a{i - 1}".encode()] * 10) + b"]"
                               for i in range(1, 10)]) + b"\nname: bomb\nstack: shop\nmatrix: {users: *a9}\n",
}


def test_the_worst_files_are_refused_at_once_by_a_real_farm_process(tmp_path: Path) -> None:
    # Given the worst files and a fresh database path
    database = tmp_path / "real.db"
    env = {**os.environ, "FARM_DATABASE_URL": f"sqlite:///{database}"}
    farm = Path(sys.executable).with_name("farm")
    results = {}
    for name, data in WORST.items():
        (tmp_path / name).write_bytes(data)
        # When the installed `farm run` is started on it
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run([str(farm), "run", str(tmp_path / name)], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_s = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        results[name] = (proc.stdout, proc.stderr, proc.returncode, cpu_s)
    # Then each exits 2 at once: within the CPU time of starting Python and reading the file (a 10^9-cell plan or an
    # expanded billion laughs would take minutes of it and gigabytes; CPU time, unlike wall time, does not grow
    # with the machine's load), with one line on stderr, no traceback, and no database
    for name, (stdout, stderr, code, cpu_s) in results.items():
        assert code == 2, (name, stderr)
        assert cpu_s < 10.0, (name, cpu_s)
        assert len(stderr.splitlines()) == 1 and stderr.startswith("error:"), (name, stderr)
        assert "Traceback" not in stdout + stderr
    assert "more than the limit of 100000" in results["billion.yaml"][1]
    assert "finite" in results["infinite.yaml"][1]
    assert "nested too deeply" in results["deep.yaml"][1]
    assert "not a UTF-8 text file" in results["binary.yaml"][1]
    assert "once aliases are expanded" in results["laughs.yaml"][1]
    assert not database.exists()
