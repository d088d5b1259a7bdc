"""The `farm` command line: the composition root, assembling the commands of `farm.commands` into one app."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer


def build_app() -> typer.Typer:
    """The `farm` Typer app with every command, in the order `farm --help` lists them."""
    import typer

    from farm.commands import flower, lab, results, running, stack
    from farm.commands.common import root

    app = typer.Typer(help="Loadfarm: at what load, and with what cache, do microservices beat a monolith?",
                      no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
    app.callback()(root)
    stack_app = typer.Typer(help="Bring a stack up or down by hand, to try it.", no_args_is_help=True)
    stack_app.command("up")(stack.stack_up)
    stack_app.command("down")(stack.stack_down)
    app.add_typer(stack_app, name="stack")
    for name, command in (("sweeps", results.sweeps), ("results", results.results), ("report", results.report),
                          ("import", results.import_), ("run", running.run), ("refine", running.refine),
                          ("submit", lab.submit), ("worker", lab.worker), ("status", lab.status_),
                          ("cancel", lab.cancel), ("resume", lab.resume), ("flower", flower.flower)):
        app.command(name)(command)
    return app


_APP: list[typer.Typer] = []


def __getattr__(name: str) -> Any:
    """`farm.cli.app`, built on first use so that importing this module stays cheap."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if not _APP:
        _APP.append(build_app())
    return _APP[0]


def main() -> None:
    """Entry point: run the CLI, turning errors into one line and an exit code."""
    import typer

    from farm.commands.common import err, styled
    from farm.errors import CancelledError, FarmError

    debug = "--debug" in sys.argv
    app = __getattr__("app")
    try:
        # Typer returns the code of typer.Exit and turns KeyboardInterrupt into 130 in this mode.
        code = app(standalone_mode=False)
    except (KeyboardInterrupt, CancelledError):
        code = 130
    except typer.Exit as exc:
        code = exc.exit_code
    except FarmError as exc:
        if debug:
            raise
        err.print(styled(("error:", "red"), f" {exc}"), soft_wrap=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors and the unexpected
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        if debug:
            raise
        err.print(styled(("internal error:", "red"),
                         f" {type(exc).__name__}: {exc} (run with --debug for the traceback)"), soft_wrap=True)
        sys.exit(1)
    if code == 130:
        err.print("interrupted: unfinished cells stay pending; run the same command again to resume", style="yellow")
    sys.exit(code if isinstance(code, int) else 0)
