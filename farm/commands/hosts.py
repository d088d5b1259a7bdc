"""`farm hosts list/trust/check`: the lab's SUT hosts, their SSH host keys, and whether each is usable."""

from __future__ import annotations

import re
import sys
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from farm.commands.common import out, settings, styled
from farm.errors import HostKeyChangedError, SpecError

app = typer.Typer(help="The lab's SUT hosts (FARM_HOSTS_FILE): list them, trust their SSH keys, check them.",
                  no_args_is_help=True)

_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}=?")


@app.command("list")
def hosts_list() -> None:
    """List the SUT hosts of the hosts file and how each is reached."""
    from farm.remote.hosts import load_hosts

    hosts = load_hosts(settings().hosts_file)
    table = Table("host", "ssh", "key", "known_hosts", "docker_host", "workdir")
    for host in hosts.values():
        table.add_row(*(Text(v) for v in (host.name, host.target, str(host.key or "(agent / default keys)"),
                                          str(host.known_hosts), host.docker_host or "(default)", host.workdir)))
    out.print(table)


@app.command("trust")
def hosts_trust(
    name: Annotated[str, typer.Argument(metavar="NAME", show_default=False, help="a host of the hosts file")],
    fingerprint: Annotated[str | None, typer.Option(
        "--fingerprint", metavar="SHA256:…", show_default=False,
        help="trust the key only if it has this fingerprint (no question asked)")] = None,
) -> None:
    """Fetch a host's SSH key, show its fingerprint, and add it to the host's known_hosts once confirmed."""
    from farm.remote.hostkeys import fetch_host_key, host_key_fingerprint, known_host_keys, trust_host_key
    from farm.remote.hosts import load_hosts, select_hosts

    if fingerprint is not None and not _FINGERPRINT.fullmatch(fingerprint):
        raise SpecError("--fingerprint: expected SHA256: and 43 base64 characters, as `ssh-keygen -lf KEY.pub` "
                        "prints on the host")
    cfg = settings()
    host = select_hosts(load_hosts(cfg.hosts_file), [name])[0]
    key = fetch_host_key(host, cfg.ssh_connect_timeout_s)
    offered = host_key_fingerprint(key)
    known = known_host_keys(host)
    if any(k.asbytes() == key.asbytes() for k in known.values()):
        out.print(f"{host.name}: {key.get_name()} {offered} is already trusted in {host.known_hosts}")
        return
    if known:
        old = ", ".join(host_key_fingerprint(k) for k in known.values())
        raise HostKeyChangedError(
            f"{host.name}: {host.target} now offers {key.get_name()} {offered}, but {host.known_hosts} holds "
            f"{old}; possible attack (someone in the middle), or the host was reinstalled; nothing was trusted",
            hint=f"if the change is expected: ssh-keygen -f {host.known_hosts} -R '{host.known_hosts_name}', "
                 "then run this again")
    out.print(f"{host.name} ({host.target}) offers the {key.get_name()} host key {offered}")
    if fingerprint is not None:
        if fingerprint.rstrip("=") != offered:
            raise SpecError(f"{host.name}: the host offers {offered}, not {fingerprint}; nothing was trusted "
                            "(a wrong --fingerprint, or someone in the middle)")
    elif not sys.stdin.isatty():
        raise SpecError(f"{host.name}: not asking without a terminal; compare the fingerprint with "
                        "`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` on the host, then pass it as --fingerprint")
    elif not typer.confirm("Is that the host's key? Trust it", default=False):
        out.print("nothing was trusted")
        raise typer.Exit(1)
    trust_host_key(host, key)
    out.print(f"trusted: added to {host.known_hosts}")


@app.command("check")
def hosts_check(
    names: Annotated[list[str] | None, typer.Argument(metavar="NAME", show_default=False,
                                                      help="hosts to check (default: every host)")] = None,
) -> None:
    """Check each SUT host: SSH, host key, auth, Docker, Compose, free disk and memory, clock offset."""
    from farm.remote.check import COLUMNS, check_hosts
    from farm.remote.hosts import load_hosts, select_hosts

    cfg = settings()
    reports = check_hosts(select_hosts(load_hosts(cfg.hosts_file), names), cfg.ssh_connect_timeout_s)
    table = Table("host", *COLUMNS, "usable")
    for report in reports:
        cells = [Text(report.host.name)]
        for column in COLUMNS:
            outcome = report.outcomes.get(column)
            if outcome is None:
                cells.append(Text("-", style="dim"))
            else:
                style = {True: "", None: "yellow", False: "red"}[outcome.ok]
                cells.append(Text(outcome.text, style))
        cells.append(Text("yes", "green") if report.usable else Text("no", "red"))
        table.add_row(*cells)
    out.print(table)
    unusable = [r for r in reports if not r.usable]
    for report in unusable:
        out.print(styled((f"{report.host.name}", "bold"), f" ({report.host.target}) is unusable: {report.problem}"))
    if unusable:
        raise typer.Exit(1)


@app.command("prepare")
def hosts_prepare(
    names: Annotated[list[str] | None, typer.Argument(metavar="NAME…", show_default=False,
                                                      help="hosts of the hosts file [default: all]")] = None,
) -> None:
    """Put the offline base image (Debian packages, built here with debootstrap once) on SUT hosts that cannot
    pull from a registry; a host that already has the current image is left alone."""
    from farm.remote.hosts import load_hosts, select_hosts
    from farm.remote.prepare import prepare_host
    from farm.remote.shell import ssh_connector

    cfg = settings()
    hosts = load_hosts(cfg.hosts_file)
    chosen = select_hosts(hosts, names)
    connect = ssh_connector(cfg.ssh_connect_timeout_s)
    for host in chosen:
        def say(text: str, name: str = host.name) -> None:
            out.print(Text(f"{name}: {text}"))

        done = prepare_host(host, connect, cfg.image_cache_dir, say=say)
        out.print(Text(f"{host.name}: base image {done}"))
