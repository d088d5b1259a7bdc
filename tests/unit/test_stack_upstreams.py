"""No shipped stack's nginx keeps a FastCGI connection to php-fpm alive.

A php-fpm child serves one connection at a time and stays with a kept-alive one while it idles in nginx's cache:
with more clients than children, the other connections wait in the backlog until nginx gives up (504 after 60 s).
`tests/integration/test_wordpress*.py` show it with real clients; this keeps every recipe's templates clear of it.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STACK_FOLDERS = (ROOT / "stacks", ROOT / "examples" / "stacks")


def nginx_configs() -> list[Path]:
    """Every nginx configuration (or template of one) in the shipped stacks."""
    found = [p for folder in STACK_FOLDERS for p in folder.rglob("*") if p.is_file() and p.suffix in (".conf", ".j2")]
    return [p for p in found if re.search(r"^\s*http\s*\{", p.read_text(), re.MULTILINE)]


def test_no_stack_keeps_a_fastcgi_connection_bound_to_a_php_fpm_child() -> None:
    # Given every nginx configuration the shipped stacks render (both WordPress recipes among them)
    configs = nginx_configs()
    assert {p.relative_to(ROOT).as_posix() for p in configs if "fastcgi_pass" in p.read_text()} >= {
        "stacks/wordpress/conf/instance.conf.j2", "stacks/wordpress/compose/instance.conf.j2"}
    # Then none asks php-fpm to keep a connection open after its request
    kept = [p.relative_to(ROOT).as_posix() for p in configs
            if re.search(r"^\s*fastcgi_keep_conn\s+on\s*;", p.read_text(), re.MULTILINE)]
    assert kept == []
