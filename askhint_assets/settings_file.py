"""The settings file: YAML read with the line of every key, validated into
:class:`~askhint_assets.settings.PipelineSettings`.

:func:`load_settings` reads ``$ASKHINT_CONFIG`` (or the path given) with a YAML loader that refuses duplicate
keys and reports every problem as an :class:`InputError` naming the file, the line and the field (the first
one, and how many more); the schema, its types and rules are :mod:`askhint_assets.settings`.
"""

from __future__ import annotations

import os
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from askhint_assets.errors import InputError
from askhint_assets.settings import (
    NESTED,
    SECTIONS,
    DatasetSettings,
    PipelineSettings,
    QuestionSettings,
    RuleError,
    dotted_field,
    got_message,
)
from askhint_assets.user_files import read_text

REMOVED: dict[tuple[str, str], str] = {
    ("questions", k): "clustering is set per prompt set: `clustering:` in prompts_store/<prompt_set>/settings.yaml"
    for k in ("min_cluster_size", "min_samples", "cluster_selection_method")
}
"""Settings that were accepted once but that nothing read, with where that choice is made instead."""
_ADAPTER = TypeAdapter(PipelineSettings)


class _DuplicateKey(yaml.constructor.ConstructorError):
    def __init__(self, key: Any, node: yaml.Node, first_line: int) -> None:
        super().__init__(None, None, f"duplicate key {key!r} (first at line {first_line})", node.start_mark)
        self.key, self.line, self.first_line = key, node.start_mark.line + 1, first_line


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that raises on a key given twice in one mapping (PyYAML keeps the last one
    silently: two ``model:`` sections would mean the first is ignored). Merge keys (``<<``) are allowed."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise _DuplicateKey(key, key_node, seen[key])
            except TypeError:  # an unhashable key: SafeLoader reports it itself
                continue
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _line_index(node: yaml.Node | None, loc: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """``{location: 1-based line}`` of every mapping key and list item (``("datasets", 1, "kind")``)."""
    out = {} if out is None else out
    if node is None:
        return out
    out.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode):
                out[(*loc, k.value)] = k.start_mark.line + 1
                _line_index(v, (*loc, k.value), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*loc, i), out)
    return out


def _line_of(lines: dict[tuple, int], loc: tuple) -> int | None:
    """The line of ``loc``, else of its nearest enclosing entry that the file has."""
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _section_type(loc: tuple) -> type | None:
    """The settings dataclass that holds the last key of ``loc`` (``("datasets", 0, "x")`` -> DatasetSettings)."""
    if len(loc) == 1:
        return PipelineSettings
    if loc[0] == "datasets" and len(loc) == 3:
        return DatasetSettings
    if len(loc) == 3 and (loc[0], loc[1]) in NESTED:
        return NESTED[(loc[0], loc[1])]
    return SECTIONS.get(loc[0]) if len(loc) == 2 else None


def _describe(err: dict) -> str:
    """One pydantic error in the words of the settings file."""
    kind, v, loc = err["type"], err.get("input"), err["loc"]
    if kind == "unexpected_keyword_argument":
        section = _section_type(loc)
        removed = REMOVED.get(("questions", loc[-1])) if section is QuestionSettings else None
        if removed:
            return f"no longer a setting: {removed}"
        known = [f.name for f in fields(section)] if section and is_dataclass(section) else []
        return "unknown setting" + (f" (known: {', '.join(known)})" if known else "")
    if kind in ("value_error", "assertion_error"):
        return str(err["ctx"]["error"])
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be a whole number, {got_message(v)}"
    if kind == "bool_type":
        quoted = isinstance(v, str) and v.lower() in ("true", "false", "yes", "no", "on", "off")
        hint = " (a quoted value is text: remove the quotes)" if quoted else ""
        return f"must be true or false, {got_message(v)}{hint}"
    if kind == "string_type":
        return f"must be text, {got_message(v)}"
    if kind == "literal_error":
        return f"must be one of {err['ctx']['expected']}, got {v!r}"
    if kind in ("dataclass_type", "dataclass_args_type", "dict_type"):
        return f"must be a mapping of settings, {got_message(v)}"
    if kind in ("tuple_type", "list_type"):
        return f"must be a list, {got_message(v)}"
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
    if kind in bounds:
        (limit,) = err["ctx"].values()
        return f"must be {bounds[kind]} {limit}, got {v!r}"
    return f"{err['msg']}, got {v!r}"


def load_settings(path: str | Path | None = None) -> PipelineSettings:
    """Settings from ``path`` (default ``$ASKHINT_CONFIG``), falling back to the demo defaults.

    Raises :class:`InputError` naming the file, line and field of the first problem.
    """
    path = path or os.environ.get("ASKHINT_CONFIG")
    if not path:
        return PipelineSettings()
    p = Path(path)
    text = read_text(p, "settings file")
    data, lines = _read_yaml(text, p)
    if data is None:
        return PipelineSettings(source=str(p))
    if not isinstance(data, dict):
        raise InputError("must be a mapping of sections", path=p, line=1)

    known = [*SECTIONS, "datasets"]
    for key in data:
        if key not in known:
            raise InputError(f"unknown section; known: {', '.join(known)}", path=p, line=lines.get((key,)),
                             field=str(key))
    if "datasets" in data and "dataset" in data:
        raise InputError("use either `dataset:` (one data set) or `datasets:` (a list), not both", path=p,
                         line=lines.get(("datasets",)), field="datasets")
    raw = data.get("datasets")
    if "datasets" in data and (not isinstance(raw, list) or not raw):
        raise InputError("must be a non-empty list of data set mappings", path=p, line=lines.get(("datasets",)),
                         field="datasets")
    for i, d in enumerate(raw or []):
        if isinstance(d, dict) and "name" not in d:
            raise InputError("every listed data set needs a `name`", path=p, line=lines.get(("datasets", i)),
                             field=f"datasets[{i}].name")

    values = {k: v for k, v in data.items() if v is not None}  # an empty section means its defaults
    try:
        return _ADAPTER.validate_python({**values, "source": str(p)})
    except ValidationError as e:
        errors = sorted(e.errors(), key=lambda err: _line_of(lines, err["loc"]) or 0)
        first = errors[0]
        more = f" ({len(errors) - 1} more problem(s) after this one)" if len(errors) > 1 else ""
        raise InputError(_describe(first) + more, path=p, line=_line_of(lines, first["loc"]),
                         field=dotted_field(first["loc"])) from None
    except RuleError as e:
        raise InputError(e.reason, path=p, line=_line_of(lines, e.loc), field=e.field) from None


def _read_yaml(text: str, p: Path) -> tuple[Any, dict[tuple, int]]:
    """The document and the line of every key, read with :class:`UniqueKeyLoader`."""
    loader = UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        lines = _line_index(node)
        data = loader.construct_document(node) if node is not None else None
    except _DuplicateKey as e:
        loc = next((k for k, ln in lines.items() if ln == e.line and k and k[-1] == e.key), (e.key,))
        raise InputError(e.problem, path=p, line=e.line, field=dotted_field(loc)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(f"not valid YAML: {e}", path=p, line=mark.line + 1 if mark else None) from None
    finally:
        loader.dispose()
    return data, lines
