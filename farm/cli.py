"""The `farm` command line: the composition root, assembling the commands of `farm.commands` into one app."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer


def build_app() -> typer.Typer:
    """The `farm` Typer app with every command, in the order `farm --help` lists them."""
    import typer

    from farm.commands import flower, hosts, lab, results, running, serve, stack
    from farm.commands.common import root

    app = typer.Typer(help="Loadfarm: at what load, and with what cache, do microservices beat a monolith?",
                      no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
    app.callback()(root)
    stack_app = typer.Typer(help="Bring a stack up or down by hand, to try it; start one from a compose file and "
                                 "check it.", no_args_is_help=True)
    stack_app.command("up")(stack.stack_up)
    stack_app.command("down")(stack.stack_down)
    stack_app.command("init")(stack.stack_init)
    stack_app.command("check")(stack.stack_check)
    app.add_typer(stack_app, name="stack")
    app.add_typer(hosts.app, name="hosts")
    for name, command in (("sweeps", results.sweeps), ("results", results.results), ("report", results.report),
                          ("import", results.import_), ("run", running.run), ("refine", running.refine),
                          ("submit", lab.submit), ("worker", lab.worker), ("status", lab.status_),
                          ("cancel", lab.cancel), ("resume", lab.resume), ("flower", flower.flower),
                          ("serve", serve.serve)):
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


def build_command() -> Any:
    """The app as a command tree whose help names every value (NAME, FILE, URL …) and shows none after a flag."""
    import typer.main

    command = typer.main.get_command(__getattr__("app"))
    _name_values(command)
    return command


def _name_values(command: Any) -> None:
    # Typer's default metavar is the Python type (`<str>`, `<int>`, and `<bool>` after every flag, --help too).
    help_option = command.get_help_option(command.context_class(command))
    for param in [*command.params, *([help_option] if help_option is not None else [])]:
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            param.metavar = ""
        elif param.metavar is None:
            param.metavar = (param.name or "value").upper()
        if param.param_type_name == "argument":  # its NAME column says it; no `<str>` type column beside it
            param.display_type_rich = lambda ctx: None
    for sub in getattr(command, "commands", {}).values():
        _name_values(sub)


def _command_path(ctx: Any) -> str:
    """`farm stack up` for the context of that command, however the program was started."""
    names = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    return " ".join(["farm", *reversed(names)])


def main() -> None:
    """Entry point: run the CLI, turning errors into one line and an exit code."""
    from farm.commands.fastpath import answer

    try:
        if answer(sys.argv[1:]):  # `farm sweeps`, `farm status NAME` on SQLite: answered in tens of milliseconds
            sys.exit(0)
    except KeyboardInterrupt:
        sys.exit(130)
    import typer
    from typer._click.exceptions import NoArgsIsHelpError, UsageError

    from farm.commands.common import err, styled
    from farm.errors import CancelledError, FarmError

    debug = "--debug" in sys.argv
    try:
        command = build_command()
        # In this mode the command returns the code of typer.Exit, and 130 for KeyboardInterrupt.
        code = command(standalone_mode=False)
    except (KeyboardInterrupt, CancelledError, typer.Abort):
        code = 130
    except typer.Exit as exc:
        code = exc.exit_code
    except NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except UsageError as exc:  # an unknown option, a missing argument, a value of the wrong kind: bad input
        err.print(styled(("error:", "red"), f" {exc.format_message()} (see `{_command_path(exc.ctx)} --help`)"),
                  soft_wrap=True)
        sys.exit(2)
    except FarmError as exc:
        if debug:
            raise
        err.print(styled(("error:", "red"), f" {exc}"), soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # other errors Typer reports itself (a file it cannot open, …)
        err.print(styled(("error:", "red"), f" {exc.format_message()}"), soft_wrap=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # the unexpected
        if debug:
            raise
        err.print(styled(("internal error:", "red"),
                         f" {type(exc).__name__}: {exc} (run with --debug for the traceback)"), soft_wrap=True)
        sys.exit(1)
    if code == 130:
        err.print("interrupted: unfinished cells stay pending; run the same command again to resume", style="yellow")
    sys.exit(code if isinstance(code, int) else 0)
