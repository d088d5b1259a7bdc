"""``compare:`` in a sweep file: which stack parameters are the architecture and the cache (`farm.compare`)."""

from __future__ import annotations

from pydantic import Field, model_validator

from farm.compare import ARCHITECTURE, CACHE, Comparison
from farm.spec.fields import RESERVED, Frozen, PlainText


class CompareSpec(Frozen):
    """The stack parameters the answer compares: the architecture (monolith vs microservices) and the cache."""

    architecture: PlainText = Field(default=ARCHITECTURE, description="the stack parameter whose values are "
                                    "monolith and microservices")
    cache: PlainText = Field(default=CACHE, description="the stack parameter that sets the cache")

    @model_validator(mode="after")
    def _distinct(self) -> CompareSpec:
        if self.architecture == self.cache:
            raise ValueError("architecture and cache must name two different parameters")
        for key in (self.architecture, self.cache):
            if key in RESERVED:
                raise ValueError(f"{key!r} is a load or instances key, not a stack parameter")
        return self

    @property
    def keys(self) -> Comparison:
        """The comparison keys as the rest of the farm reads them."""
        return Comparison(self.architecture, self.cache)
