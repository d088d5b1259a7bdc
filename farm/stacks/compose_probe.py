"""Reaching replicas that publish nothing: the contract's requests sent from inside the project's own network.

A team's compose file rarely publishes its app's port: only the entry (nginx on ``8080:80``) is meant to be
reached from outside. The farm publishes nothing more for it. Its override adds one small service,
``farm-probe`` (the offline base image, which has curl, sleeping), joined to the networks of the services it must
reach; readiness, the connectivity check, an HTTP reset and the metrics of a replica that publishes nothing run
as curl in that container (`docker exec` over the SSH connection the driver already holds), addressed by the
replica's container name (Docker's DNS on the project's network). The deployment's token reaches curl through
the probe's environment, never a command line.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from farm.errors import SpecError
from farm.remote.baseimage import BASE_IMAGE
from farm.stacks.contract import DIRECT, attempt
from farm.stacks.driver import TOKEN_ENV, TOKEN_HEADER, Endpoint
from farm.stacks.probe import MAX_JSON_BYTES

PROBE_SERVICE = "farm-probe"
# curl, with the deployment's token as a header when there is one ($LOADFARM_TOKEN, in the probe's environment)
_CURL = (f'if [ -n "${TOKEN_ENV}" ]; then set -- -H "{TOKEN_HEADER}: ${TOKEN_ENV}" "$@"; fi; '
         'exec curl -sS "$@"')
# one GET per URL, each answering its status code on a line of its own (000: no answer)
_STATUSES = 't=$1; shift; for u do curl -s -o /dev/null -m "$t" -w "%{http_code}\\n" "$u" || true; done'
# one GET per URL ($1: curl's options), each answering a line: curl's exit status, then its output (the body,
# or its error, and the status code on a last line of its own) in base64
_BODIES = ('o=$1; shift; for u do out=$(sh -c "$0" sh $o -w "\\n%{http_code}" "$u" 2>&1); rc=$?; '
           'printf "%s %s\\n" "$rc" "$(printf "%s" "$out" | base64 -w0)"; done')
_UNREACHED = {6: "its name does not resolve in the project's network (the container is gone)",
              7: "nothing accepts connections there"}


def probe_service(services: Mapping[str, Mapping[str, Any]], inside: set[str], token: str) -> dict[str, Any]:
    """The override's ``farm-probe`` service: on every network of the ``inside`` services (those reached
    without a published port), sleeping until the project goes down."""
    if PROBE_SERVICE in services:
        raise SpecError(f"the compose file defines a service named {PROBE_SERVICE}, which is the farm's own",
                        hint="rename that service")
    networks: set[str] = set()
    for name in sorted(inside):
        spec = services[name]
        if "network_mode" in spec:
            raise SpecError(f"services.{name} sets network_mode, so the farm cannot reach its replicas over the "
                            "project's network", hint=f"publish its port, or drop network_mode from {name}")
        declared = spec.get("networks")
        networks |= {str(n) for n in declared} if isinstance(declared, (list, dict)) and declared else {"default"}
    return {"image": BASE_IMAGE, "command": ["sh", "-c", "trap 'exit 0' TERM; sleep infinity & wait"],
            "networks": sorted(networks), "environment": {TOKEN_ENV: token},
            "mem_limit": "64m", "pids_limit": 64, "restart": "no"}


class ProbeHttp:
    """The contract's requests (contract.Http): a replica with ``via`` is asked by curl in that container, any
    other directly from here."""

    def __init__(self, conn: Any, env: Mapping[str, str]) -> None:
        self.conn = conn
        self.env = dict(env)

    def ok(self, endpoint: Endpoint, path: str, timeout: float) -> bool:
        return endpoint in self.answering([endpoint], path, timeout)

    def post(self, endpoint: Endpoint, path: str, timeout: float, headers: dict[str, str]) -> None:
        if not endpoint.via:
            DIRECT.post(endpoint, path, timeout, headers)
            return
        self._request(endpoint, path, timeout, ["-X", "POST", "--data-binary", "", "-o", "/dev/null"])

    def documents(self, endpoints: list[Endpoint], path: str, timeout: float, headers: dict[str, str]) -> list[Any]:
        """Each endpoint's JSON document or the exception its request gave (contract.Http): the direct ones from
        here, the others in one command per probe container (a reading at a window's edge is one round trip)."""
        direct = [e for e in endpoints if not e.via]
        answers = dict(zip(direct, DIRECT.documents(direct, path, timeout, headers), strict=True))
        for via in sorted({e.via for e in endpoints if e.via}):
            inside = [e for e in endpoints if e.via == via]
            result = self.conn.run(["docker", "exec", via, "sh", "-c", _BODIES, _CURL,
                                    f"-m {timeout:g} --max-filesize {MAX_JSON_BYTES}", *(e.url + path for e in inside)],
                                   timeout=len(inside) * timeout + 30, check=False, env=self.env)
            lines = result.stdout.splitlines() if result.code == 0 else []
            for endpoint, line in zip(inside, [*lines, *[""] * len(inside)], strict=False):
                answers[endpoint] = attempt(partial(_document, endpoint, line, result))
        return [answers[e] for e in endpoints]

    def answering(self, endpoints: list[Endpoint], path: str, timeout: float) -> set[Endpoint]:
        """Those of ``endpoints`` whose GET ``path`` answers 2xx: the direct ones at once from here, the others
        in one command per probe container."""
        direct = [e for e in endpoints if not e.via]
        answered: set[Endpoint] = set()
        if direct:
            with ThreadPoolExecutor(max_workers=min(16, len(direct)), thread_name_prefix="ready") as pool:
                answered |= {e for e, ok in zip(direct, pool.map(lambda e: DIRECT.ok(e, path, timeout), direct),
                                                strict=True) if ok}
        for via in sorted({e.via for e in endpoints if e.via}):
            inside = [e for e in endpoints if e.via == via]
            result = self.conn.run(["docker", "exec", via, "sh", "-c", _STATUSES, "sh", f"{timeout:g}",
                                    *(e.url + path for e in inside)],
                                   timeout=len(inside) * timeout + 30, check=False, env=self.env)
            codes = result.stdout.split() if result.code == 0 else []
            answered |= {e for e, code in zip(inside, codes, strict=False) if code.startswith("2")}
        return answered

    def _request(self, endpoint: Endpoint, path: str, timeout: float, args: list[str]) -> str:
        """Run curl in the endpoint's probe; its body (the status code's line removed) when it answered 2xx."""
        result = self.conn.run(["docker", "exec", endpoint.via, "sh", "-c", _CURL, "sh", "-m", f"{timeout:g}",
                                *args, "-w", "\\n%{http_code}", endpoint.url + path], timeout=timeout + 30,
                               check=False, env=self.env)
        return _answer(endpoint.via, result.code, result.stdout or result.stderr)


def _document(endpoint: Endpoint, line: str, result: Any) -> Any:
    """One endpoint's line of a _BODIES answer as its JSON document (OSError, ValueError as _answer's)."""
    code, _, encoded = line.partition(" ")
    if not code.isdigit():
        said = " ".join((result.stderr or result.stdout).split())[:200] or f"exit status {result.code}"
        raise OSError(f"asked from {endpoint.via}: no answer ({said})")
    body = _answer(endpoint.via, int(code), base64.b64decode(encoded).decode("utf-8", "replace"))
    if len(body) > MAX_JSON_BYTES:
        raise ValueError(f"larger than {MAX_JSON_BYTES // 1_000_000} MB")
    return json.loads(body or "null")


def _answer(via: str, code: int, output: str) -> str:
    """curl's exit status and output (the body, then the status code on a line of its own) as the body of a 2xx
    answer; ConnectionRefusedError when nothing listens, ValueError when too large, OSError otherwise."""
    body, _, status = output.rpartition("\n")
    if code in _UNREACHED:
        raise ConnectionRefusedError(f"{_UNREACHED[code]} (from {via})")
    if code == 63:
        raise ValueError(f"larger than {MAX_JSON_BYTES // 1_000_000} MB")
    if code != 0:
        said = " ".join(output.split())[:200] or f"exit status {code}"
        raise OSError(f"asked from {via}: {said}")
    if not status.strip().startswith("2"):
        raise OSError(f"answered {status.strip() or 'nothing'}")
    return body
