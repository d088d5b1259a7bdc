"""YAML read with bounds: untrusted text cannot exhaust the stack (deep nesting) or memory (alias bombs).

`yaml.safe_load` composes nested collections recursively, so a document nested a few thousand levels deep
raises `RecursionError`; and it shares aliased nodes, so a "billion laughs" document is small in memory until
something walks it (validation, hashing, printing). The loader here counts, while composing, how deep each node
is and how many nodes it stands for once aliases are expanded, and refuses a document over either bound.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from farm.errors import SpecError

MAX_DEPTH = 64
MAX_NODES = 200_000


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that refuses documents nested deeper than MAX_DEPTH or expanding to more than MAX_NODES."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded node count, expanded depth)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        """Compose one node as SafeLoader does, then check the bounds of what it expands to."""
        if self.check_event(yaml.AliasEvent):
            anchor = self.peek_event().anchor
            target = self.anchors.get(anchor)
            if target is not None and id(target) not in self._sizes:
                raise SpecError(f"line {self.peek_event().start_mark.line + 1}: the alias *{anchor} refers to "
                                "a collection that contains it; recursive aliases are not allowed")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise SpecError(f"line {self.peek_event().start_mark.line + 1}: nested too deeply "
                            f"(more than {MAX_DEPTH} levels)")
        node = super().compose_node(parent, index)
        self._depth -= 1
        if node is not None and id(node) not in self._sizes:
            self._measure(node)
        return node

    def _measure(self, node: Node) -> None:
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
            _refuse_duplicate_keys(node)
        size, depth = 1, 1
        for child in children:
            child_size, child_depth = self._sizes.get(id(child), (1, 1))
            size += child_size
            depth = max(depth, child_depth + 1)
        line = node.start_mark.line + 1
        if depth > MAX_DEPTH:
            raise SpecError(f"line {line}: nested too deeply once aliases are expanded (more than {MAX_DEPTH} levels)")
        if size > MAX_NODES:
            raise SpecError(f"line {line}: the document holds more than {MAX_NODES:,} values once aliases are "
                            "expanded; write a smaller sweep")
        self._sizes[id(node)] = (size, depth)


def _refuse_duplicate_keys(node: MappingNode) -> None:
    """PyYAML lets a repeated key silently replace the first (two hosts named sutA: the last one wins); YAML
    itself says keys are unique. A merge (``<<``) may still be overridden by an explicit key, as YAML allows."""
    seen: set[tuple[str, str]] = set()
    for key, _value in node.value:
        if not isinstance(key, ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        if (key.tag, key.value) in seen:
            shown = key.value if len(key.value) <= 60 else key.value[:59] + "…"
            raise SpecError(f"line {key.start_mark.line + 1}: {shown!r} appears twice in the same mapping; "
                            "the second would silently replace the first — remove or rename one")
        seen.add((key.tag, key.value))


def load_bounded(text: str) -> Any:
    """The one YAML document in `text`; `SpecError` (without a source prefix) if it is not valid or too big."""
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)  # the reader refuses non-printable characters already here
        return loader.get_single_data()
    except SpecError:
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "YAML"
        if isinstance(exc, yaml.reader.ReaderError):
            where, problem = f"character {exc.position + 1}", str(exc).splitlines()[0]
        else:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{where}: not valid YAML ({problem})") from exc
    except RecursionError as exc:
        raise SpecError("YAML: nested too deeply") from exc
    except (ValueError, OverflowError, TypeError) as exc:
        # The constructors raise these for values YAML's grammar accepts but Python cannot build
        # (an integer of more than 4,300 digits, a timestamp on 31 February, …).
        raise SpecError(f"YAML: a value cannot be read ({exc})") from exc
    finally:
        if loader is not None:
            loader.dispose()


def load_mapping(text: str, where: object, expected: str) -> dict[Any, Any]:
    """The YAML mapping in `text` (a sweep file, a stack manifest): every problem is one `SpecError` that starts
    with ``where`` (the file); ``expected`` says what the document must be when it is not a mapping."""
    try:
        raw = load_bounded(text)
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: {expected}")
    return raw
