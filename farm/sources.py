"""What a sweep runs: the stack folder whose commands start the system under test, and the locustfile.

Both are code: a stack's recipe starts processes and a locustfile is Python that Locust imports. A name such as
``stack: shop`` is looked up in the sweep's folder and the working folder before the built-in stacks, so a local
folder of that name wins; these lines make that visible before anything runs.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from farm.spec import LoadedSweep, locustfile_for
from farm.stacks.manifest import BUILTIN_STACKS, MANIFEST_FILE


def what_runs(loaded: LoadedSweep) -> list[str]:
    """One line for the resolved stack folder (built-in, local, or local shadowing a built-in), one for the
    locustfile, and one per ``replicas.<service>`` matrix key that some configurations ignore."""
    from farm.sweep_scaling import replica_notes

    return [_stack_line(loaded), f"locustfile: {_literal(str(locustfile_for(loaded)))}",
            *(f"note: {line}" for line in replica_notes(loaded.spec, loaded.manifest))]


def builtin_stack(name: str) -> Path | None:
    """The built-in stack folder called ``name``, if there is one."""
    if not name or Path(name).name != name or name in (".", ".."):
        return None
    folder = BUILTIN_STACKS / name
    return folder.resolve() if (folder / MANIFEST_FILE).is_file() else None


def _stack_line(loaded: LoadedSweep) -> str:
    folder = loaded.manifest.folder.resolve()
    shown = _literal(str(folder))
    if folder.parent == BUILTIN_STACKS.resolve():
        return f"stack: {shown} (built-in)"
    shadowed = builtin_stack(loaded.spec.stack)
    if shadowed is not None and shadowed != folder:
        return f"stack: {shown} — a local folder that shadows the built-in stack '{_literal(loaded.spec.stack)}'"
    return f"stack: {shown} (a local folder)"


def _literal(text: str) -> str:
    # A path may hold a newline or other control characters; escape them so each entry stays on its one line.
    return "".join(c.encode("unicode_escape").decode("ascii") if unicodedata.category(c)[0] == "C" else c
                   for c in text)
