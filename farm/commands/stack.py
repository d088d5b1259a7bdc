"""`farm stack up/down`: bring a stack up or down by hand, to try it."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from farm.commands.common import coerce, out, settings, styled
from farm.errors import SpecError


def stack_up(
    stack: Annotated[str, typer.Argument(metavar="STACK", show_default=False,
                                         help="a stack name under stacks/, or a path to a stack folder")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", metavar="KEY=VALUE",
                                                    help="a stack parameter (repeatable)")] = None,
    instances: Annotated[int, typer.Option("--instances", "-n", min=1, metavar="N", help="app instances")] = 1,
    name: Annotated[str | None, typer.Option(metavar="NAME",
                                             help="deployment name \\[default: manual-STACK]")] = None,
) -> None:
    """Start a stack in the background and print its entry URL; stop it with `farm stack down`."""
    from farm.stacks.local import LocalDriver
    from farm.stacks.manifest import load_manifest, resolve_stack_folder

    cfg = settings()
    manifest = load_manifest(resolve_stack_folder(stack, extra=cfg.stacks_dir))
    params: dict[str, Any] = {**manifest.defaults(), "instances": instances}
    for item in param or []:
        key, sep, raw = item.partition("=")
        if not sep or key not in manifest.parameters:
            raise SpecError(f"--param {item}: expected KEY=VALUE with KEY one of {', '.join(manifest.parameters)}")
        value = coerce(raw, manifest.parameters[key].default)
        if not manifest.parameters[key].admits(value):
            raise SpecError(f"--param {key}: {raw!r} is not allowed; allowed: {manifest.parameters[key].allowed()}")
        params[key] = value
    driver = LocalDriver(cfg.artefacts_dir / "deployments")
    deployment = driver.up(manifest, params, name or f"manual-{manifest.name}")
    try:
        driver.ready(deployment, time.monotonic() + cfg.ready_timeout_s)
        driver.check_instances(deployment)
    except BaseException:
        driver.down(deployment)
        raise
    out.print(styled((deployment.name, "bold"), f" is up at {deployment.entry_url} "
                     f"({len(deployment.instances)} instance processes; logs in {deployment.workdir})"))
    out.print(f"stop it with: farm stack down {deployment.name}")


def stack_down(name: Annotated[str, typer.Argument(metavar="NAME", show_default=False,
                                                   help="the deployment name printed by `farm stack up`")]) -> None:
    """Stop every process of a deployment started with `farm stack up` (or left by a crash)."""
    from farm.stacks.local import LocalDriver

    stopped = LocalDriver(settings().artefacts_dir / "deployments").clean(name)
    out.print(f"{name}: stopped {stopped} process group(s)" if stopped else f"{name}: nothing was running")

