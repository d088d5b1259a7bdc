"""`farm stack check DIR [--sut HOST]`: every contract point of a stack folder, each ok or a problem with its fix.

Without a host the check reads only files: the manifest loads, every path its recipes name is inside the folder
and present, the templates render for the defaults, the locustfile exists and compiles, the compose file parses
and names the recipe's services. With a driver (a SUT host's compose driver) it brings the stack up once per
replica count, through the same driver a sweep uses, and reports readiness, each replica reached, reset, the
metrics' shape and a clean teardown.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from farm.errors import FarmError, SpecError
from farm.stacks import compose_override as override
from farm.stacks.closed import recipe_paths
from farm.stacks.compose_render import image_tags, render_project
from farm.stacks.driver import Deployment, StackDriver
from farm.stacks.manifest import MANIFEST_FILE, StackManifest, load_manifest
from farm.stacks.scaling import compose_replicas

Status = Literal["ok", "note", "problem"]


@dataclass(frozen=True)
class Point:
    """One contract point: ok, a note (it runs, but something is missing), or a problem and how to fix it."""

    name: str
    status: Status
    detail: str
    fix: str = ""


def failed(points: list[Point]) -> bool:
    """Whether any point is a problem."""
    return any(p.status == "problem" for p in points)


def check_folder(folder: Path) -> tuple[StackManifest | None, list[Point]]:
    """The static contract points of a stack folder, and its manifest when it loads; SpecError (bad input) when
    ``folder`` is not a stack folder at all."""
    if not (folder / MANIFEST_FILE).is_file():
        raise SpecError(f"{folder}: no {MANIFEST_FILE} here",
                        hint="name a stack folder, or write one with `farm stack init --from docker-compose.yml`")
    try:
        manifest = load_manifest(folder)
    except SpecError as exc:
        return None, [Point("manifest", "problem", exc.message, exc.hint or "edit stack.yaml (README: 'Writing a "
                                                                           "stack')")]
    recipes = " and ".join(n for n, r in (("a process recipe", manifest.local), ("a compose recipe",
                                                                                  manifest.compose)) if r)
    points = [Point("manifest", "ok", f"{MANIFEST_FILE} loads: stack '{manifest.name}' with {recipes}")]
    points.append(_paths(manifest))
    points += _templates(manifest)
    points.append(_locustfile(manifest))
    if manifest.compose is not None:
        points.append(_compose_file(manifest))
    points.append(_reset(manifest))
    return manifest, points


def _paths(manifest: StackManifest) -> Point:
    named = list(recipe_paths(manifest))
    missing = [f"{where}: {path}" for where, path in named if not (manifest.folder / path).exists()]
    if missing:
        return Point("recipe paths", "problem", f"missing in the stack folder: {'; '.join(missing)}",
                     "put the files there, or correct the paths (relative to the stack folder)")
    return Point("recipe paths", "ok", f"{len(named)} path(s), all inside the stack folder and present")


def _templates(manifest: StackManifest) -> Iterator[Point]:
    params = {**manifest.defaults(), "instances": 1}
    if manifest.local is not None:
        from farm.stacks.local import LocalDriver

        with tempfile.TemporaryDirectory(prefix="farm-check-") as tmp:
            try:
                rendered = LocalDriver(Path(tmp), owned=False).render(manifest, params, Path(tmp))
            except FarmError as exc:
                yield Point("process recipe", "problem", f"does not render for the defaults: {exc.message}",
                            exc.hint or "correct the template (README: 'Writing a stack')")
            else:
                yield Point("process recipe", "ok", f"renders for the defaults: {len(rendered.plans)} process(es)")
    if manifest.compose is not None:
        try:
            render_project(manifest, manifest.compose, params, "check", image_tags(manifest, manifest.compose))
        except (FarmError, OSError) as exc:
            message = exc.message if isinstance(exc, FarmError) else str(exc)
            yield Point("compose recipe", "problem", f"does not render for the defaults: {message}",
                        "correct the compose file or the recipe's files")
        else:
            kind = "used as it is" if not override.is_template(manifest.compose.file) else "renders for the defaults"
            yield Point("compose recipe", "ok", f"{manifest.compose.file}: {kind}")


def _locustfile(manifest: StackManifest) -> Point:
    path = manifest.locustfile_path()
    if not path.is_file():
        return Point("locustfile", "problem", f"{manifest.locustfile}: no such file in the stack folder",
                     "write the load scenario there (a Locust FastHttpUser), or name yours in `locustfile:`")
    try:
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
        return Point("locustfile", "problem", f"{manifest.locustfile}: not Python: {exc}", "correct it")
    return Point("locustfile", "ok", f"{manifest.locustfile} exists and compiles")


def _compose_file(manifest: StackManifest) -> Point:
    recipe = manifest.compose_recipe()
    params = {**manifest.defaults(), "instances": 2}
    plain = not override.is_template(recipe.file)
    notes: list[str] = []
    try:
        text = render_project(manifest, recipe, params, "check", image_tags(manifest, recipe))["compose.yaml"]
        services = override.read_services(text, recipe.file)
        if plain:  # what the driver adds to a team's file, and what it refuses there (a service it cannot reach)
            notes = override.farm_override(text, recipe.file, project="check", bind="127.0.0.1", port=recipe.port,
                                           entry=recipe.entry, reached=set(recipe.instances),
                                           scaled=compose_replicas(manifest, params, recipe.scale)).notes
    except (FarmError, OSError) as exc:
        message = f"{exc.message}{f' ({exc.hint})' if exc.hint else ''}" if isinstance(exc, FarmError) else str(exc)
        return Point("compose file", "problem", message,
                     "correct the compose file or the recipe; `docker compose config` shows what Compose reads")
    if recipe.entry not in services:  # a template may leave other services out for some parameters, not the entry
        return Point("compose file", "problem", f"the entry {recipe.entry} is not a service of {recipe.file} for "
                     f"the defaults; its services: {', '.join(services)}", "correct compose.entry")
    fixed = [s for s in recipe.scale if s in services and services[s].get("container_name")]
    if fixed:
        return Point("compose file", "problem", f"{', '.join(fixed)}: a fixed container_name cannot be scaled",
                     "remove container_name from the scaled services (or from compose.scale)")
    built = [s for s, spec in services.items() if spec.get("build") is not None and not spec.get("image")]
    if built and plain:
        return Point("compose file", "problem", f"{', '.join(built)}: built from `build:`, but the farm starts "
                     "Compose with --no-build", "build and tag the image on the SUT host, or give it an `image:`")
    detail = f"{recipe.file} parses: {len(services)} service(s), entry {recipe.entry}, scaled " \
             f"{', '.join(recipe.scale) or 'none'}"
    return Point("compose file", "note" if notes else "ok", "; ".join([detail, *notes]))


def _reset(manifest: StackManifest) -> Point:
    if manifest.reset is None:
        return Point("reset", "note", "no reset: caches are not emptied between cells, so repetitions do not start "
                     "from a known state", "add `reset:` (README: 'Bring your own compose file')")
    return Point("reset", "ok", f"declared: {manifest.reset if isinstance(manifest.reset, str) else 'an action'}")


def check_on_driver(manifest: StackManifest, driver: StackDriver, name: str, ready_timeout_s: float,
                    counts: tuple[int, ...] = (1, 2)) -> Iterator[Point]:
    """Bring the stack up with each replica count in turn through ``driver``, report every contract point as it
    is checked, and always tear it down."""
    for count in counts:
        params = {**manifest.defaults(), "instances": count}
        label = f"×{count}"
        try:
            deployment = driver.up(manifest, params, f"{name}-{count}")
        except FarmError as exc:
            yield Point(f"up {label}", "problem", str(exc),  # its hint holds the last logs: part of what happened
                        "check the host (`farm hosts check`) and the compose file (`docker compose config`)")
            continue
        yield Point(f"up {label}", "ok", f"{len(deployment.endpoints)} replica(s) reached, entry "
                                         f"{deployment.entry_url}")
        try:
            yield from _contract(driver, deployment, count, ready_timeout_s)
        finally:
            driver.down(deployment)
        left = driver.clean(deployment.name)
        yield Point(f"teardown {label}", "ok" if not left else "problem",
                    "nothing left" if not left else f"{left} container(s) or process(es) were left; removed now",
                    "" if not left else "report it: `down` should have removed them")


def _contract(driver: StackDriver, deployment: Deployment, count: int, timeout_s: float) -> Iterator[Point]:
    label = f"×{count}"
    health = deployment.manifest.health
    try:
        driver.ready(deployment, time.monotonic() + timeout_s)
    except FarmError as exc:
        yield Point(f"readiness {label}", "problem", exc.message,
                    f"every replica must answer GET {health} with 2xx; set `health:` to a path that does")
        return
    yield Point(f"readiness {label}", "ok", f"every replica answers GET {health}")
    expected = _expected(deployment, count)
    found = {s: len([e for e in deployment.instances if e.service == s]) for s in expected}
    short = {s: n for s, n in found.items() if n != expected[s]}
    replicas = ", ".join(f"{e.service}#{e.replica}" for e in deployment.instances)
    try:
        driver.check_instances(deployment)
    except FarmError as exc:
        yield Point(f"replicas {label}", "problem", exc.message, "each replica must answer its health path")
    else:
        if short:
            yield Point(f"replicas {label}", "problem", "reached " + ", ".join(
                f"{s}: {n} of {expected[s]}" for s, n in short.items()), "publish or scale them as the recipe says")
        else:
            yield Point(f"replicas {label}", "ok", f"each answers, one by one: {replicas}")
    if deployment.manifest.reset is None:
        yield Point(f"reset {label}", "note", "none declared")
    else:
        try:
            driver.reset(deployment)
            yield Point(f"reset {label}", "ok", "done on every instance")
        except FarmError as exc:
            yield Point(f"reset {label}", "problem", exc.message, exc.hint or "check `reset:` in stack.yaml")
    yield _metrics(driver, deployment, label)


def _expected(deployment: Deployment, count: int) -> dict[str, int]:
    """How many replicas of each instance service the recipe runs at ``count`` instances."""
    recipe = deployment.manifest.compose
    if recipe is None:
        return {}
    counts = compose_replicas(deployment.manifest, {**deployment.params, "instances": count}, recipe.scale)
    return {s: counts.get(s, 1) for s in recipe.instances}


def _metrics(driver: StackDriver, deployment: Deployment, label: str) -> Point:
    manifest = deployment.manifest
    try:
        read = driver.metrics(deployment)
    except FarmError as exc:
        return Point(f"metrics {label}", "problem", exc.message, exc.hint or "check `metrics:` in stack.yaml")
    if read.warnings:
        return Point(f"metrics {label}", "problem", "; ".join(read.warnings),
                     "a JSON object: {requests: N, cache: {hits: N, misses: N}} (README: 'Writing a stack')")
    if manifest.metrics is None and read.cache_hits is None:
        return Point(f"metrics {label}", "note", "none declared: no hit ratio and no server-side request count")
    ratio = "no hit ratio" if read.cache_hits is None else f"{read.cache_hits} hit(s), {read.cache_misses} miss(es)"
    return Point(f"metrics {label}", "ok", f"{len(read.raw)} document(s) in the contract's shape; {ratio}")
