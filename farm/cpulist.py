"""CPU lists as Linux writes them (``0-2,5``): read and written without importing anything heavy (the sweep
parser uses them, on the CLI's fast refusal path)."""

from __future__ import annotations

from collections.abc import Iterable


def parse_cpus(text: str | int) -> frozenset[int]:
    """A CPU list as Linux writes it (``"0-2,5"``, or one number) as a set; ValueError when it is not one."""
    found: set[int] = set()
    for part in str(text).split(","):
        low, dash, high = part.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ValueError(f"{text!r} is not a CPU list; write e.g. \"0\", \"0-2\" or \"0,2-3\"")
        first, last = int(low), int(high) if dash else int(low)
        if last < first or last > 4095:
            raise ValueError(f"{text!r}: the range {part.strip()} is empty or beyond CPU 4095")
        found.update(range(first, last + 1))
    return frozenset(found)


def format_cpus(cpus: Iterable[int]) -> str:
    """A set of CPUs as Linux's list format: ``{0, 1, 2, 5}`` -> ``"0-2,5"``."""
    ordered = sorted(cpus)
    runs: list[list[int]] = []
    for cpu in ordered:
        if runs and cpu == runs[-1][-1] + 1:
            runs[-1].append(cpu)
        else:
            runs.append([cpu])
    return ",".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)
