"""A sweep file (YAML) read into a validated, frozen `SweepSpec`.

Every problem is reported as one `SpecError` line: the file, the field path, what is wrong, what is allowed.
The sections and their bounds are in `farm.spec.fields`, the spec in `farm.spec.model`, the checks against the
stack in `farm.spec.checks`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from farm.bounded_yaml import load_mapping
from farm.errors import FarmError, SpecError
from farm.files import read_regular
from farm.load_level import RATE
from farm.spec.checks import _check_against_stack, _check_cell_count, _describe, _resolve_locustfile, count_cells
from farm.spec.fields import (
    DEFAULT_MAX_CELLS,
    DEFAULT_PACING_S,
    LOAD_AXES,
    MAX_FILE_BYTES,
    MAX_INSTANCES,
    MAX_RATE,
    MAX_USERS,
    RESERVED,
    SLO,
    CpuSpec,
    LoadSpec,
    StopWhen,
    SutSpec,
    open_loop,
    ramp_refusal,
)
from farm.spec.model import LoadedSweep, SweepSpec, check_sweep_name, load_axis, locust_users
from farm.stacks.manifest import load_manifest, resolve_stack_folder
from farm.text import clip as _clip
from farm.text import one_line as _one_line

__all__ = ["DEFAULT_MAX_CELLS", "DEFAULT_PACING_S", "LOAD_AXES", "MAX_FILE_BYTES", "MAX_INSTANCES", "MAX_RATE",
           "MAX_USERS", "RESERVED", "SLO", "CpuSpec", "LoadSpec", "LoadedSweep", "StopWhen", "SutSpec", "SweepSpec",
           "check_sweep_name", "count_cells", "load_axis", "load_sweep", "locust_users", "locustfile_for",
           "open_loop", "parse_sweep", "ramp_refusal", "rebuild_sweep"]


def load_sweep(path: Path, *, stacks_dir: Path | None = None,
               max_cells: int | None = DEFAULT_MAX_CELLS) -> LoadedSweep:
    """Read, validate and resolve a sweep file; raise `SpecError` naming the file and field on any problem."""
    try:
        data = read_regular(path, MAX_FILE_BYTES)
    except OSError as exc:
        raise SpecError(_one_line(f"{path}: cannot read the sweep file: {exc.strerror or exc}")) from exc
    except ValueError as exc:  # a path with a NUL byte
        raise SpecError(_one_line(f"{path!r}: cannot read the sweep file: {exc}")) from exc
    if len(data) > MAX_FILE_BYTES:
        raise SpecError(_one_line(f"{path}: the sweep file is larger than {MAX_FILE_BYTES // 1024} KiB; "
                                  "a sweep file is a short YAML document"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(_one_line(f"{path}: not a UTF-8 text file (byte 0x{data[exc.start]:02x} at offset "
                                  f"{exc.start}); a sweep file is YAML text")) from exc
    return parse_sweep(text, source=str(path), base=path.parent, stacks_dir=stacks_dir, max_cells=max_cells)


def parse_sweep(text: str, *, source: str, base: Path, stacks_dir: Path | None = None,
                max_cells: int | None = DEFAULT_MAX_CELLS) -> LoadedSweep:
    """Validate sweep YAML text; `source` names it in errors and `base` resolves relative stack paths.

    A sweep of more than `max_cells` cells, or whose ramp to its largest users level is longer than its warm-up,
    is refused (max_cells None: neither check, for sweeps already accepted).
    Every problem, whatever the text holds, is one `SpecError` line with control characters escaped.
    """
    try:
        return _parse(text, source=source, base=base, stacks_dir=stacks_dir, max_cells=max_cells)
    except SpecError as exc:
        raise SpecError(_one_line(exc.message), hint=exc.hint and _one_line(exc.hint)) from exc


def _parse(text: str, *, source: str, base: Path, stacks_dir: Path | None, max_cells: int | None) -> LoadedSweep:
    if len(text) > MAX_FILE_BYTES:
        raise SpecError(f"{source}: the sweep is longer than {MAX_FILE_BYTES // 1024} KiB; "
                        "a sweep file is a short YAML document")
    raw = load_mapping(text, source, "a sweep file must be a mapping with name, stack and matrix")
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"{source}: {_describe(exc)}") from exc
    if max_cells is not None:  # a new sweep; one already accepted (a worker reading it) stays readable
        _check_cell_count(spec, source, max_cells)
        refusal = ramp_refusal(spec.load, list(locust_users(spec)))
        if refusal is not None:
            paced = " (open loop: users = rate × load.pacing)" if spec.load_kind == RATE else ""
            raise SpecError(f"{source}: load.warmup: {refusal}{paced}")
    if spec.cpus is not None and spec.sut is not None:
        raise SpecError(f"{source}: cpus: the stack runs on SUT hosts, not beside the generator; remove cpus: "
                        "(it pins generator and stack apart when they share this host)")
    if spec.load.pacing is not None and spec.load_kind != RATE:
        raise SpecError(f"{source}: load.pacing: only open-loop load is paced; give matrix.rate instead of "
                        "matrix.users, or remove load.pacing")
    return _with_stack(spec, text, source=source, base=base, stacks_dir=stacks_dir)


def rebuild_sweep(stored: dict[str, Any], text: str, *, source: str, base: Path,
                  stacks_dir: Path | None = None) -> LoadedSweep:
    """A sweep already accepted, rebuilt from its stored model dump (no second reading of its YAML text), with its
    stack and locustfile resolved where it is rebuilt (a worker host); ``text`` is kept for the report."""
    try:
        spec = SweepSpec.model_validate(stored)
    except ValidationError as exc:
        raise SpecError(_one_line(f"{source}: {_describe(exc)}")) from exc
    try:
        return _with_stack(spec, text, source=source, base=base, stacks_dir=stacks_dir)
    except SpecError as exc:
        raise SpecError(_one_line(exc.message), hint=exc.hint and _one_line(exc.hint)) from exc


def _with_stack(spec: SweepSpec, text: str, *, source: str, base: Path, stacks_dir: Path | None) -> LoadedSweep:
    try:
        manifest = load_manifest(resolve_stack_folder(spec.stack, base=base, extra=stacks_dir))
    except FarmError as exc:
        raise SpecError(f"{source}: stack: {exc}") from exc
    except (OSError, ValueError) as exc:  # a name the file system refuses (too long, …)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise SpecError(f"{source}: stack: cannot look up {_clip(repr(spec.stack))}: {reason}") from exc
    _check_against_stack(spec, manifest, source)
    if spec.load.locustfile is not None:
        _resolve_locustfile(spec.load.locustfile, base, source)
    return LoadedSweep(spec=spec, manifest=manifest, source=source, text=text)


def locustfile_for(loaded: LoadedSweep) -> Path:
    """The scenario a sweep's cells run: its own `load.locustfile`, else the stack's."""
    if loaded.spec.load.locustfile is None:
        return loaded.manifest.locustfile_path()
    return _resolve_locustfile(loaded.spec.load.locustfile, Path(loaded.source).parent, loaded.source)
