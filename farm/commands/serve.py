"""`farm serve`: a live, read-only web view of the sweeps in the store, with basic auth off loopback and HTTPS
when given a certificate."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Any

import typer

from farm.commands.common import DbOption, err, open_store, settings, styled
from farm.settings import Settings

DEFAULT_PORT = 5556  # beside Flower's 5555
AUTH_VARIABLE = "FARM_SERVE_AUTH"


def serve(
    address: Annotated[str, typer.Option(metavar="HOST", help="host name or IP address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="port to listen on")] = DEFAULT_PORT,
    certfile: Annotated[Path | None, typer.Option(metavar="FILE", show_default=False,
                                                  help="TLS certificate (PEM): serve HTTPS; needs --keyfile")] = None,
    keyfile: Annotated[Path | None, typer.Option(metavar="FILE", show_default=False,
                                                 help="its unencrypted private key (PEM)")] = None,
    db: DbOption = None,
) -> None:
    """Serve a live, read-only web view of the sweeps, their cells and the answer; basic auth
    (FARM_SERVE_AUTH=user:password) is required off loopback."""
    cfg = settings(db)
    auth, tls = checked(cfg, address=address, port=port, certfile=certfile, keyfile=keyfile)
    import uvicorn

    from farm.web.app import make_app

    sock = listening_socket(address, port)  # bound here, so that a port in use is one line and exit 2
    store = open_store(cfg)
    app = make_app(store, artefacts_dir=cfg.artefacts_dir, auth=auth)
    scheme = "https" if tls else "http"
    shown = f"[{address}]" if ":" in address else address
    err.print(styled(f"farm serve: {scheme}://{shown}:{port}/ ", ("(read-only; Ctrl-C to stop)", "dim"),
                     " with basic auth" if auth else ""), soft_wrap=True)
    options: dict[str, Any] = {"ssl_certfile": str(tls[0]), "ssl_keyfile": str(tls[1])} if tls else {}
    # Open event streams would hold a shutdown for good: give them two seconds to close.
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2, **options)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        app.state.site.answers.close()
        sock.close()


def listening_socket(address: str, port: int) -> socket.socket:
    """A TCP socket bound to ``address:port`` (uvicorn listens on it); a port in use is a SpecError."""
    from farm.errors import SpecError

    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address, port))
    except OSError as exc:
        sock.close()
        raise SpecError(f"--address {address} --port {port}: cannot listen there ({exc.strerror or exc}); "
                        "choose another --port") from exc
    return sock


def checked(cfg: Settings, *, address: str, port: int, certfile: Path | None,
            keyfile: Path | None) -> tuple[tuple[str, str] | None, tuple[Path, Path] | None]:
    """The credential and TLS pair to serve with, after the same checks as `farm flower` (a password is required
    off loopback); raises SpecError, exit 2, before anything listens."""
    from farm.access import check_port, credential, listens_on_loopback_only, tls_pair
    from farm.errors import SpecError

    check_port(port)
    loopback = listens_on_loopback_only(address)
    tls = tls_pair(certfile, keyfile)
    if cfg.serve_auth is not None:
        return credential(AUTH_VARIABLE, cfg.serve_auth.get_secret_value()), tls
    if not loopback:
        raise SpecError(f"farm serve would listen on {address} without a password; "
                        f"set {AUTH_VARIABLE}=user:password")
    return None, tls
