"""Reading YAML as composed nodes, so every validation error names file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from askhint_assets.errors import InputError
from askhint_assets.user_files import read_text

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"


def line_of(node: yaml.Node) -> int:
    """1-based line where ``node`` starts."""
    return node.start_mark.line + 1


def compose_file(path: Path) -> yaml.Node:
    """The file's root node; malformed YAML or an empty file is an ``InputError``."""
    text = read_text(path, encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        raise InputError(f"malformed YAML: {e.problem or e.context}", path=path, line=line) from None
    except yaml.YAMLError as e:
        raise InputError(f"malformed YAML: {e}", path=path) from None
    if node is None:
        raise InputError("file is empty", path=path, line=1)
    return node


class Reader:
    """Typed accessors over nodes of one file; each failure raises ``InputError``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.root = compose_file(path)

    def fail(self, node: yaml.Node | None, field: str, message: str) -> InputError:
        line = line_of(node) if node is not None else None
        return InputError(message, path=self.path, line=line, field=field)

    def mapping(
        self, node: yaml.Node, field: str, allowed: set[str] | None = None
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Key → (key node, value node); keys must be unique strings (and in ``allowed``)."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, field or "<root>", "expected a mapping")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for k, v in node.value:
            name = f"{field}.{k.value}" if field else str(k.value)
            if not isinstance(k, yaml.ScalarNode) or k.tag != _STR:
                raise self.fail(k, name, "keys must be strings")
            if k.value in out:
                raise self.fail(k, name, f"duplicate key (first at line {line_of(out[k.value][0])})")
            if allowed is not None and k.value not in allowed:
                raise self.fail(k, name, f"unknown field; expected one of {sorted(allowed)}")
            out[k.value] = (k, v)
        return out

    def require(
        self, entries: dict[str, tuple[yaml.Node, yaml.Node]], key: str, parent: yaml.Node, field: str
    ) -> yaml.Node:
        if key not in entries:
            raise self.fail(parent, field, "missing required field")
        return entries[key][1]

    def string(self, node: yaml.Node, field: str, *, allow_empty: bool = False) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag != _STR:
            raise self.fail(node, field, "expected a string")
        if not allow_empty and not node.value.strip():
            raise self.fail(node, field, "must not be empty")
        return node.value

    def sequence(self, node: yaml.Node, field: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, field, "expected a list")
        return list(node.value)

    def integer(self, node: yaml.Node, field: str, minimum: int | None = None) -> int:
        if not isinstance(node, yaml.ScalarNode) or node.tag != _INT:
            raise self.fail(node, field, "expected an integer")
        value = int(self.construct(node))
        if minimum is not None and value < minimum:
            raise self.fail(node, field, f"must be at least {minimum}, got {value}")
        return value

    def number(self, node: yaml.Node, field: str) -> float:
        if not isinstance(node, yaml.ScalarNode) or node.tag not in (_INT, _FLOAT):
            raise self.fail(node, field, "expected a number")
        return float(self.construct(node))

    def construct(self, node: yaml.Node) -> Any:
        """The plain Python value of ``node`` (safe constructors)."""
        return yaml.SafeLoader("").construct_object(node, deep=True)
