"""Lenient parsers for VLM answers. None of them raises; failures come back as None / ``ok=False``."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass

_ECHO = re.compile(r"\b(?:ab)?normal\s*(?:or|/)\s*(?:ab)?normal\b", re.I)
_STAGE1 = re.compile(r"\b(abnormal|normal)\b", re.I)
_YES_NO = re.compile(r"\b(yes|no)\b", re.I)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S | re.I)
_GROUP_KEYS = ("group", "category", "class", "type", "anomaly_group", "anomaly_type")
_REASON_KEYS = ("reason", "rationale", "explanation", "justification")
_FIELD = re.compile(r"^\W*(\w[\w ]*?)\W*[:=]\s*(.+)$")
_STOP = {"to", "of", "the", "and", "or", "a", "an", "against", "for", "in", "on"}


def parse_stage1(text: str | None) -> str | None:
    """``"Abnormal"`` or ``"Normal"`` from the first such word in ``text`` (case-insensitive,
    whole words, so "abnormal" never counts as "normal"); an echoed "Normal or Abnormal" is ignored."""
    if not text:
        return None
    m = _STAGE1.search(_ECHO.sub(" ", text))
    if not m:
        return None
    return "Abnormal" if m.group(1).lower() == "abnormal" else "Normal"


def parse_yes_no(text: str | None) -> bool | None:
    """True/False from the first whole word "yes"/"no" in ``text``; None if neither appears."""
    if not text:
        return None
    m = _YES_NO.search(text)
    return None if m is None else m.group(1).lower() == "yes"


@dataclass(frozen=True)
class Stage2:
    """Stage-2 answer: the matched group (one of the allowed names) and the model's rationale."""

    group: str | None
    rationale: str | None
    ok: bool
    error: str | None = None


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", s.lower()).strip()


def match_group(value: str, groups: tuple[str, ...]) -> str | None:
    """The group ``value`` names: exact (case/punctuation-insensitive), contained, or difflib-close."""
    v = _norm(value)
    if not v:
        return None
    normed = {_norm(g): g for g in groups}
    if v in normed:
        return normed[v]
    contained = [g for n, g in normed.items() if n and n in v]
    if len(contained) == 1:
        return contained[0]
    close = difflib.get_close_matches(v, list(normed), n=1, cutoff=0.6)
    if close:
        return normed[close[0]]
    return _by_keywords(v, groups)


def _by_keywords(text: str, groups: tuple[str, ...]) -> str | None:
    """The one group with the largest share of its content words (fuzzily) present in ``text``."""
    words = set(text.split())
    best: list[tuple[float, str]] = []
    for g in groups:
        keys = [w for w in _norm(g).split() if w not in _STOP]
        if not keys:
            continue
        hits = sum(1 for k in keys if k in words or difflib.get_close_matches(k, words, n=1, cutoff=0.8))
        best.append((hits / len(keys), g))
    best.sort(reverse=True)
    if best and best[0][0] > 0 and (len(best) == 1 or best[0][0] > best[1][0]):
        return best[0][1]
    return None


def _json_object(text: str) -> dict | None:
    candidates = [m.group(1) for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for c in candidates:
        try:
            obj = json.loads(c.strip())
        except (json.JSONDecodeError, ValueError):
            continue
        if isinstance(obj, dict):
            return {str(k).strip().lower(): v for k, v in obj.items()}
    return None


def _fields(text: str) -> dict[str, str]:
    """``Key: value`` lines (markdown bullets and bold allowed), keys lower-cased."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _FIELD.match(line.strip())
        if m:
            out.setdefault(m.group(1).strip().lower(), m.group(2).strip().strip("*").strip())
    return out


def _pick(d: dict, keys: tuple[str, ...]) -> str | None:
    for k in keys:
        if d.get(k) not in (None, ""):
            return str(d[k]).strip()
    return None


def parse_stage2(text: str | None, groups: tuple[str, ...]) -> Stage2:
    """Group and rationale from a JSON object (fenced or bare), ``Group: … / Reason: …`` lines, or a
    group named anywhere in the text; the group is matched to ``groups`` case-insensitively and
    fuzzily. The text is the rationale when no explicit one is given."""
    try:
        if not text or not text.strip():
            return Stage2(None, None, False, "empty answer")
        for d in (_json_object(text), _fields(text)):
            if not d:
                continue
            value = _pick(d, _GROUP_KEYS)
            if value is not None:
                group = match_group(value, groups)
                reason = _pick(d, _REASON_KEYS)
                if group is not None:
                    return Stage2(group, reason, True)
                return Stage2(None, reason, False, f"group {value!r} matches none of {list(groups)}")
        group = match_group(text, groups)
        if group is not None:
            return Stage2(group, text.strip(), True)
        return Stage2(None, text.strip(), False, "no group found in the answer")
    except Exception as exc:  # never raise: a parse failure is data, not a crash
        return Stage2(None, None, False, f"parse failure: {exc}")
