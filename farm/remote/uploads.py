"""The upload folder on a SUT host: where rendered projects and build contexts go, owned by the SSH user alone.

By default ``~/.loadfarm`` of the SSH user (the hosts file's ``workdir`` names another, e.g. /var/lib/loadfarm).
Before every use the farm makes sure it is a real folder (not a symlink), creates it 0700 when missing, and
refuses one that another user owns or that group or others may enter: in a folder anyone can write (the old
default was /tmp/loadfarm), another user could plant a symlink where the farm uploads, or read a deployment's
rendered configuration. Nothing below it is reachable to other users of the host, whatever its files' modes.
"""

from __future__ import annotations

from farm.errors import ProvisionError
from farm.remote.hosts import SutHost
from farm.remote.shell import RemoteShell

# $1: the folder as the hosts file gives it ("~/x" means the SSH user's home); prints the absolute folder.
_PREPARE = r"""
d=$1
case $d in "~") d=$HOME ;; "~/"*) d=$HOME/${d#"~/"} ;; esac
[ -L "$d" ] && { printf %s "$d"; exit 3; }
[ -e "$d" ] || mkdir -p -m 700 -- "$d" || { printf %s "$d"; exit 5; }
[ -d "$d" ] && [ ! -L "$d" ] || { printf %s "$d"; exit 3; }
set -- "$d" $(stat -c '%u %a' -- "$d")
[ "$2" = "$(id -u)" ] || { printf '%s %s' "$1" "$2"; exit 4; }
case $3 in *00) ;; *) printf '%s %s' "$1" "$3"; exit 6 ;; esac
printf %s "$1"
"""


def upload_root(conn: RemoteShell, host: SutHost) -> str:
    """The host's upload folder, absolute, checked (and created 0700 when missing); ProvisionError naming what
    is wrong and how to fix it otherwise."""
    result = conn.run(["sh", "-c", _PREPARE, "sh", host.workdir], timeout=30, check=False)
    shown = result.stdout.split(" ")
    folder = shown[0] if shown and shown[0] else host.workdir
    problems = {
        3: (f"{folder} is a symlink or not a folder; the farm uploads only into a real folder of its own",
            f"remove it, or name another workdir: for {host.name} in the hosts file"),
        4: (f"{folder} belongs to another user (uid {shown[-1]}), not to {host.user}",
            f"name a folder of {host.user}'s own as workdir: in the hosts file, e.g. ~/.loadfarm"),
        5: (f"cannot create {folder} as {host.user}", "create it, owned by that user, mode 0700"),
        6: (f"{folder} is open to group or others (mode {shown[-1]})", f"chmod 700 {folder} on {host.name}"),
    }
    if result.code in problems:
        message, hint = problems[result.code]
        raise ProvisionError(f"{host.name}: upload folder {message}", hint=hint)
    if result.code != 0 or not folder.startswith("/"):
        raise ProvisionError(f"{host.name}: cannot prepare the upload folder {host.workdir}: "
                             f"{' '.join((result.stderr or result.stdout).split())[:200]}")
    return folder
