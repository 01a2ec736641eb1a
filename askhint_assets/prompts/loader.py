"""Load and validate a prompt set: ``prompts_store/<name>/`` with four YAML files.

- ``taxonomy.yaml``: ``name``, ``groups`` (list), ``classes`` (class → ``group``, ``description``);
- ``class_questions.yaml``: class → 1-8 yes/no questions, each ending with "?";
- ``templates.yaml``: the prompt texts (see ``templates.Templates``); ``groups`` may be left out,
  and where given must equal the taxonomy's;
- ``settings.yaml``: ``target_size`` and the optional Q* build settings (defaults below).

``PromptSet.version`` hashes the parsed, normalised content (whitespace collapsed in questions and
descriptions, trailing spaces stripped in templates), so layout- or comment-only edits keep it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from askhint_assets.errors import InputError
from askhint_assets.hashing import hash_file, hash_obj
from askhint_assets.prompts import defaults
from askhint_assets.prompts.schema import Reader, line_of
from askhint_assets.prompts.templates import PLACEHOLDERS, Templates

FILES = ("taxonomy.yaml", "class_questions.yaml", "templates.yaml", "settings.yaml")
MIN_QUESTIONS, MAX_QUESTIONS = 1, 8
DEFAULT_SETTINGS: dict[str, Any] = {
    "per_cluster": list(defaults.PER_CLUSTER),
    "dedup_threshold": defaults.DEDUP_THRESHOLD,
    "merge_linkage": defaults.MERGE_LINKAGE,
    "clustering": dict(defaults.CLUSTERING),
}


@dataclass(frozen=True)
class ClassInfo:
    group: str
    description: str


@dataclass(frozen=True)
class PromptSet:
    """A validated prompt set; ``files`` maps file name → hash of its bytes."""

    name: str
    groups: tuple[str, ...]
    classes: dict[str, ClassInfo]
    class_questions: dict[str, tuple[str, ...]]
    templates: Templates
    settings: dict[str, Any]
    version: str
    files: dict[str, str]


def _norm(text: str) -> str:
    return " ".join(text.split())


def _norm_block(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _load_taxonomy(path: Path) -> tuple[str, tuple[str, ...], dict[str, ClassInfo], dict[str, int]]:
    r = Reader(path)
    top = r.mapping(r.root, "", {"name", "groups", "classes"})
    name = _norm(r.string(r.require(top, "name", r.root, "name"), "name"))
    groups: list[str] = []
    for i, g in enumerate(r.sequence(r.require(top, "groups", r.root, "groups"), "groups")):
        group = _norm(r.string(g, f"groups[{i}]"))
        if group in groups:
            raise r.fail(g, f"groups[{i}]", f"duplicate group {group!r}")
        groups.append(group)
    if not groups:
        raise r.fail(top["groups"][1], "groups", "must list at least one group")
    classes: dict[str, ClassInfo] = {}
    lines: dict[str, int] = {}
    cls_node = r.require(top, "classes", r.root, "classes")
    for cls, (knode, vnode) in r.mapping(cls_node, "classes").items():
        field = f"classes.{cls}"
        entry = r.mapping(vnode, field, {"group", "description"})
        gnode = r.require(entry, "group", vnode, f"{field}.group")
        group = _norm(r.string(gnode, f"{field}.group"))
        if group not in groups:
            raise r.fail(gnode, f"{field}.group", f"group {group!r} is not in groups {groups}")
        desc = r.require(entry, "description", vnode, f"{field}.description")
        classes[cls] = ClassInfo(group, _norm(r.string(desc, f"{field}.description")))
        lines[cls] = line_of(knode)
    if not classes:
        raise r.fail(cls_node, "classes", "must list at least one class")
    return name, tuple(groups), classes, lines


def _load_questions(path: Path, classes: dict[str, ClassInfo], lines: dict[str, int]) -> dict:
    r = Reader(path)
    entries = r.mapping(r.root, "")
    seen: dict[str, str] = {}
    out: dict[str, tuple[str, ...]] = {}
    for cls, (knode, vnode) in entries.items():
        if cls not in classes:
            raise r.fail(knode, cls, f"unknown class; taxonomy.yaml lists {list(classes)}")
        items = r.sequence(vnode, cls) if vnode.tag != "tag:yaml.org,2002:null" else []
        if not MIN_QUESTIONS <= len(items) <= MAX_QUESTIONS:
            raise r.fail(vnode, cls, f"needs {MIN_QUESTIONS}-{MAX_QUESTIONS} questions, got {len(items)}")
        qs: list[str] = []
        for i, node in enumerate(items, 1):
            field = f"{cls}/{i}"
            q = _norm(r.string(node, field))
            if not q.endswith("?"):
                raise r.fail(node, field, f"a question must end with '?': {q!r}")
            key = q.casefold()
            if key in seen:
                raise r.fail(node, field, f"duplicate question (same as {seen[key]}): {q!r}")
            seen[key] = field
            qs.append(q)
        out[cls] = tuple(qs)
    for cls in classes:
        if cls not in out:
            raise r.fail(r.root, cls, f"class from taxonomy.yaml:{lines[cls]} has no questions")
    return {cls: out[cls] for cls in classes}


def _load_templates(path: Path, groups: tuple[str, ...]) -> Templates:
    r = Reader(path)
    allowed = {*PLACEHOLDERS, "groups", "normal_word", "abnormal_word"}
    top = r.mapping(r.root, "", allowed)
    texts: dict[str, str] = {}
    dummy = dict.fromkeys(("questions", "groups", "question", "normal", "abnormal"), "")
    for key, placeholder in PLACEHOLDERS.items():
        node = r.require(top, key, r.root, key)
        text = _norm_block(r.string(node, key))
        if placeholder and placeholder not in text:
            raise r.fail(node, key, f"template must contain the placeholder {placeholder}")
        try:
            text.format(**dummy)
        except (KeyError, IndexError, ValueError) as e:
            msg = f"bad placeholder or brace ({e!r}); write literal braces as {{{{ }}}}"
            raise r.fail(node, key, msg) from None
        texts[key] = text
    if "groups" in top:
        gnode = top["groups"][1]
        given = tuple(_norm(r.string(g, f"groups[{i}]")) for i, g in enumerate(r.sequence(gnode, "groups")))
        if given != groups:
            raise r.fail(gnode, "groups", f"must equal taxonomy.yaml groups {list(groups)}")
    words = {k: _norm(r.string(top[k][1], k)) for k in ("normal_word", "abnormal_word") if k in top}
    return Templates(groups=groups, **texts, **words)


def _load_settings(path: Path) -> dict[str, Any]:
    r = Reader(path)
    top = r.mapping(r.root, "", {"target_size", *DEFAULT_SETTINGS})
    size = r.integer(r.require(top, "target_size", r.root, "target_size"), "target_size", 1)
    s = {"target_size": size, **copy.deepcopy(DEFAULT_SETTINGS)}
    if "per_cluster" in top:
        node = top["per_cluster"][1]
        items = r.sequence(node, "per_cluster")
        pc = [r.integer(n, f"per_cluster[{i}]", 1) for i, n in enumerate(items)]
        if len(pc) != 2 or pc[0] > pc[1]:
            raise r.fail(node, "per_cluster", "expected [min, max] with 1 <= min <= max")
        s["per_cluster"] = pc
    if "dedup_threshold" in top:
        node = top["dedup_threshold"][1]
        s["dedup_threshold"] = r.number(node, "dedup_threshold")
        if not 0.0 < s["dedup_threshold"] <= 1.0:
            raise r.fail(node, "dedup_threshold", "must lie in (0, 1]")
    if "merge_linkage" in top:
        node = top["merge_linkage"][1]
        s["merge_linkage"] = r.string(node, "merge_linkage").strip()
        if s["merge_linkage"] not in ("ward", "centroid", "average"):
            raise r.fail(node, "merge_linkage", "expected one of ['ward', 'centroid', 'average']")
    if "clustering" in top:
        c = r.mapping(top["clustering"][1], "clustering", set(DEFAULT_SETTINGS["clustering"]))
        cs = s["clustering"]
        choices = {"metric": ("euclidean", "cosine"), "cluster_selection_method": ("eom", "leaf")}
        for key, (_, node) in c.items():
            field = f"clustering.{key}"
            if key in choices:
                cs[key] = r.string(node, field).strip()
                if cs[key] not in choices[key]:
                    raise r.fail(node, field, f"expected one of {list(choices[key])}")
            elif key == "selection_epsilon":
                cs[key] = r.number(node, field)
                if cs[key] < 0:
                    raise r.fail(node, field, "must be >= 0")
            else:
                cs[key] = r.integer(node, field, 2 if key == "min_cluster_size" else 1)
    return s


def load_prompt_set(directory: str | Path) -> PromptSet:
    """Load and validate ``directory``'s four YAML files; errors are ``InputError``s."""
    d = Path(directory)
    if not d.is_dir():
        raise InputError("prompt set directory not found", path=d)
    name, groups, classes, lines = _load_taxonomy(d / "taxonomy.yaml")
    questions = _load_questions(d / "class_questions.yaml", classes, lines)
    templates = _load_templates(d / "templates.yaml", groups)
    settings = _load_settings(d / "settings.yaml")
    content = {
        "name": name,
        "groups": groups,
        "classes": classes,
        "class_questions": questions,
        "templates": templates,
        "settings": settings,
    }
    return PromptSet(
        version=hash_obj(content),
        files={f: hash_file(d / f) for f in FILES},
        **content,
    )


def question_table(ps: PromptSet) -> list[dict[str, str]]:
    """One row per question in taxonomy order: ``class``, ``group``, ``question_id`` (``Fighting/2``)."""
    return [
        {"class": cls, "group": ps.classes[cls].group, "question_id": f"{cls}/{i}", "question": q}
        for cls, qs in ps.class_questions.items()
        for i, q in enumerate(qs, 1)
    ]
