"""The comparison keys: which stack parameter is "the architecture" and which is "the cache" of a sweep.

A sweep names them under ``compare:`` (default ``architecture`` and ``cache``; validated in `farm.spec.compare`);
this module is the one place that reads them. The analysis sees every cell under the two roles' names
(`Comparison.roles`), so that a stack which calls them ``arch`` and ``caching`` gets the same surfaces, verdicts and
words as one that does not. Free of pydantic and YAML: the lean report path reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

ARCHITECTURE = "architecture"
CACHE = "cache"
ROLES = (ARCHITECTURE, CACHE)

V = TypeVar("V")


@dataclass(frozen=True)
class Comparison:
    """The stack parameters the answer compares: the architecture (monolith vs microservices) and the cache."""

    architecture: str = ARCHITECTURE
    cache: str = CACHE

    def renamed(self) -> dict[str, str]:
        """Each parameter that is not called by its role's name, mapped to the role: empty by default."""
        return {k: role for k, role in ((self.architecture, ARCHITECTURE), (self.cache, CACHE)) if k != role}

    def roles(self, params: Mapping[str, V]) -> dict[str, V]:
        """``params`` with the architecture and cache parameters under their roles' names (``architecture``,
        ``cache``); every other parameter as it is."""
        renamed = self.renamed()
        if not renamed:
            return dict(params)
        return {renamed.get(k, k): v for k, v in params.items() if k in renamed or k not in ROLES}

    def params(self, roles: Mapping[str, V]) -> dict[str, V]:
        """The inverse of `roles`: ``architecture``/``cache`` back to the stack's own parameter names."""
        back = {role: k for k, role in self.renamed().items()}
        return {back.get(k, k): v for k, v in roles.items()}


DEFAULT_COMPARISON = Comparison()


def comparison_of(stored: Mapping[str, Any] | None) -> Comparison:
    """The comparison keys of a stored spec (its model dump, validated when the sweep was submitted); the
    defaults when it names none, as for an imported sweep."""
    given = (stored or {}).get("compare") or {}
    return Comparison(**{role: str(given[role]) for role in ROLES if given.get(role)})
