"""`farm stack up/down`: bring a stack up or down by hand, to try it; `farm stack init/check`: write a starting
stack.yaml from a compose file, and check a stack folder against the contract."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from farm.commands.common import coerce, open_store, out, settings, styled
from farm.errors import ProvisionError, SpecError

MANUAL_LEASE_S = 10 * 365 * 86400.0  # a deployment started by hand holds its SUT host until `farm stack down`


def stack_up(
    stack: Annotated[str, typer.Argument(metavar="STACK", show_default=False,
                                         help="a stack name under stacks/, or a path to a stack folder")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", metavar="KEY=VALUE",
                                                    help="a stack parameter, or replicas.SVC=N (repeatable)")] = None,
    instances: Annotated[int, typer.Option("--instances", "-n", min=1, metavar="N", help="app instances")] = 1,
    name: Annotated[str | None, typer.Option(metavar="NAME",
                                             help="deployment name \\[default: manual-STACK]")] = None,
    sut: Annotated[str | None, typer.Option("--sut", metavar="HOST",
                                            help="run it as Docker Compose on this SUT host (from FARM_HOSTS_FILE)"
                                            )] = None,
) -> None:
    """Start a stack in the background and print its entry URL; stop it with `farm stack down`."""
    from farm.stacks import place
    from farm.stacks.manifest import load_manifest, resolve_stack_folder

    cfg = settings()
    manifest = load_manifest(resolve_stack_folder(stack, extra=cfg.stacks_dir))
    params: dict[str, Any] = {**manifest.defaults(), "instances": instances}
    keys = [*manifest.parameters, *(f"replicas.{s}" for s in manifest.scalable)]
    for item in param or []:
        key, sep, raw = item.partition("=")
        if sep and key in keys[len(manifest.parameters):]:  # a scalable service's replicas, like the matrix's
            if not raw.isdigit() or not 1 <= int(raw) <= 256:
                raise SpecError(f"--param {key}: {raw!r} is not allowed: a whole number from 1 to 256")
            params[key] = int(raw)
            continue
        if not sep or key not in manifest.parameters:
            raise SpecError(f"--param {item}: expected KEY=VALUE with KEY one of {', '.join(keys)}")
        value = coerce(raw, manifest.parameters[key].default)
        refused = manifest.parameters[key].refusal(value)
        if refused:
            raise SpecError(f"--param {key}: {raw!r} is not allowed: {refused}")
        params[key] = value
    driver = place.choose(cfg, place.sut_host(cfg, sut) if sut is not None else None, owned=False)
    name = name or f"manual-{manifest.name}"
    if sut is not None:
        _lease(cfg, sut, name)
    try:
        deployment = driver.up(manifest, params, name)
        try:
            driver.ready(deployment, time.monotonic() + cfg.ready_timeout_s)
            driver.check_instances(deployment)
        except BaseException:
            driver.down(deployment)
            raise
    except BaseException:
        if sut is not None:
            _release(cfg, sut, name)
        raise
    driver.leave(deployment)  # the deployment stays up; what this process holds open does not
    where = f"on {sut}, {len(deployment.instances)} instance replicas" if sut else (
        f"{len(deployment.instances)} instance processes; logs in {deployment.workdir}")
    out.print(styled((deployment.name, "bold"), f" is up at {deployment.entry_url} ({where})"))
    out.print(f"stop it with: farm stack down {deployment.name}")


def _lease(cfg: Any, sut: str, name: str) -> None:
    """Take the SUT host's lease for a deployment started by hand (until `farm stack down`): no group is
    measured beside it, and no group's clean-up removes it."""
    from farm.store.leases import SutLeases

    leases = SutLeases(open_store(cfg))
    if leases.claim([sut], None, _manual(name), MANUAL_LEASE_S) is None:
        holder = leases.holder(sut)
        raise ProvisionError(f"SUT host {sut} is in use by {holder[0] if holder else 'another deployment'}",
                             hint="wait until it is free, or `farm stack down NAME` the deployment holding it")


def _release(cfg: Any, sut: str, name: str) -> None:
    from farm.store.leases import SutLeases

    SutLeases(open_store(cfg)).release(sut, _manual(name))


def _manual(name: str) -> str:
    return f"manual {name}"


def stack_down(name: Annotated[str, typer.Argument(metavar="NAME", show_default=False,
                                                   help="the deployment name printed by `farm stack up`")]) -> None:
    """Stop every process of a deployment started with `farm stack up` (or left by a crash), here or on its
    SUT host."""
    from farm.stacks import place

    removed = place.remove(settings(), name)
    if removed.sut is not None:
        _release(settings(), removed.sut, name)
        out.print(f"{name}: removed {removed.count} container(s) on {removed.sut}" if removed.count else
                  f"{name}: nothing was running on {removed.sut}")
        return
    out.print(f"{name}: stopped {removed.count} process group(s)" if removed.count else
              f"{name}: nothing was running")


def stack_init(
    compose: Annotated[Path, typer.Option("--from", metavar="COMPOSE.yml", show_default=False,
                                          help="the team's docker-compose.yml (used as it is, never changed)")],
    folder: Annotated[Path | None, typer.Argument(metavar="DIR", show_default=False,
                                                  help="the stack folder that holds it \\[default: its folder]")]
    = None,
    force: Annotated[bool, typer.Option("--force", help="replace an existing stack.yaml")] = False,
) -> None:
    """Write a starting stack.yaml for a compose file, guessed from it: the entry is the service that publishes
    a port, the services without one that have an image or a build are scaled, health is `/`. Prints what it
    guessed and what to check; never replaces an existing stack.yaml unless --force. Then: `farm stack check`."""
    from farm.stacks.init import init_stack

    written = init_stack(compose, folder, force=force)
    out.print(styled(("wrote", "bold"), " " + ", ".join(str(p) for p in written.files)))
    out.print("guessed:")
    for line in written.guess.guessed:
        out.print(f"  - {line}", soft_wrap=True)
    out.print("check:")
    for line in written.guess.to_check:
        out.print(f"  - {line}", soft_wrap=True)
    out.print(f"next: farm stack check {written.manifest.parent} (add --sut HOST to run it once on a SUT host)",
              soft_wrap=True)


def stack_check(
    folder: Annotated[Path, typer.Argument(metavar="DIR", show_default=False, help="the stack folder")],
    sut: Annotated[str | None, typer.Option("--sut", metavar="HOST", help=(
        "also bring it up on this SUT host (from FARM_HOSTS_FILE) at 1 and 2 replicas of its scaled services, "
        "check readiness, each replica, reset, metrics and teardown, and take it down"))] = None,
) -> None:
    """Check a stack folder against the stack contract: the manifest, its recipe paths, templates, locustfile and
    compose file; each point ok, a note, or a problem with its fix. Exit 0 when nothing is a problem, 1 when
    something is, 2 when DIR is not a stack folder or HOST is unknown."""
    from farm.stacks import check, place

    cfg = settings()
    manifest, points = check.check_folder(folder.expanduser().resolve())
    host = place.sut_host(cfg, sut) if sut is not None else None  # an unknown host is bad input: before any work
    for point in points:
        _print_point(point)
    if host is not None and manifest is not None and not check.failed(points):
        if manifest.compose is None:
            points.append(check.Point("sut", "problem", f"stack '{manifest.name}' has no compose recipe",
                                      "add a `compose:` section to run it on a SUT host"))
            _print_point(points[-1])
        else:
            out.print(f"on {host.name}: bringing {manifest.name} up at 1, then 2 replicas (minutes)…")
            driver = place.sut_driver(cfg, host)
            for point in check.check_on_driver(manifest, driver, f"check-{manifest.name}", cfg.ready_timeout_s):
                points.append(point)
                _print_point(point)
    elif host is not None:
        out.print("not run on the SUT host: fix the problems above first")
    problems = sum(p.status == "problem" for p in points)
    out.print(f"{problems} problem(s)" if problems else "no problems", style="red" if problems else "green")
    raise typer.Exit(1 if problems else 0)


_STYLE = {"ok": "green", "note": "yellow", "problem": "red"}


def _print_point(point: Any) -> None:
    fix = f" — fix: {point.fix}" if point.fix and point.status != "ok" else ""
    out.print(styled((f"{point.status:<8}", _STYLE[point.status]), f"{point.name}: {point.detail}{fix}"),
              soft_wrap=True)
