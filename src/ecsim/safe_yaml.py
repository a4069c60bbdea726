"""Reading untrusted YAML (scenario and case files, API bodies) with limits, into one-line errors.

PyYAML's ``safe_load`` builds only plain data, but it still accepts things a small input file never
needs and that cost time or memory or hide mistakes:

- nesting thousands of levels deep (Python recursion in the composer and in later validation);
- aliases that expand exponentially ("billion laughs": nine aliases per level, nine levels) or that
  refer to themselves (a list containing itself);
- the same key twice in one mapping (YAML says it is an error; PyYAML silently keeps the last);
- texts of many megabytes (parsed with libyaml where available: 500 kB in about a second).

`load_mapping` refuses each of these with an `InputError` that names the origin, what was found and
what is allowed. The limits are far above what any shipped scenario or case file uses (nesting
depth 10, no aliases but two small anchors, 5 kB).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, ScalarNode

from .errors import InputError

MAX_BYTES = 500_000
"""Largest scenario or case file: 100 times the largest shipped one (5 kB); it parses in about a second."""
MAX_DEPTH = 32
"""Deepest nesting of mappings and lists; a case file's scenario nests 8 levels."""
MAX_NODES = 100_000
"""Most values (keys, scalars, lists, mappings), aliases counted each time they are used: a 500 kB
file of plain values has fewer; an alias bomb has billions."""

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml's parser where available: 10 times faster


class _Loader(_Base):
    """SafeLoader that refuses duplicate keys (YAML says they are an error; PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, MappingNode):   # before merge keys (<<) are flattened: they may repeat keys
            seen: set = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                if not isinstance(key_node, ScalarNode):
                    raise ConstructorError(None, None, "found a key that is a list or mapping", key_node.start_mark)
                key = self.construct_object(key_node)
                if key in seen:
                    raise _Refused(f"key {key!r} given twice{_line(key_node.start_mark)}", "each key once per mapping")
                seen.add(key)
        return SafeConstructor.construct_mapping(self, node, deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_yaml_map)
# Dates are never inputs here: read them as text (an impossible date like 2001-02-30 would otherwise
# raise ValueError while parsing), so the schema names the field that got one.
_Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.constructor.SafeConstructor.construct_yaml_str)


class _Refused(Exception):
    def __init__(self, found: str, allowed: str):
        self.found = found
        self.allowed = allowed


def _line(mark) -> str:
    return f" at line {mark.line + 1}" if mark is not None else ""


def _prescan(text: str) -> None:
    """Walk the parser's events (no recursion, no objects built) and refuse deep nesting, too many
    values once aliases are expanded, and aliases to their own unfinished anchor."""
    depth = total = 0
    open_nodes: list[tuple[str | None, int]] = []
    sizes: dict[str, int] = {}
    unfinished: set[str] = set()
    for event in yaml.parse(text, Loader=_Base):
        if isinstance(event, yaml.ScalarEvent):
            total += 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise _Refused(f"nesting deeper than {MAX_DEPTH} levels{_line(event.start_mark)}",
                               f"lists and mappings nested at most {MAX_DEPTH} deep")
            total += 1
            open_nodes.append((event.anchor, total))
            if event.anchor:
                unfinished.add(event.anchor)
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1
            anchor, first = open_nodes.pop()
            if anchor:
                sizes[anchor] = total - first + 1
                unfinished.discard(anchor)
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor in unfinished:
                raise _Refused(f"an alias inside its own anchor{_line(event.start_mark)}",
                               "aliases to finished anchors only")
            total += sizes.get(event.anchor, 1)
        if total > MAX_NODES:
            raise _Refused(f"over {MAX_NODES} values", f"at most {MAX_NODES} values (an alias counts as "
                           "many values as its anchor holds, each time it is used)")


def load(text: str, origin: str) -> object:
    """Parse one YAML document from ``text`` with the limits above; ``origin`` names it in errors."""
    if not isinstance(text, str):
        raise InputError(origin, type(text).__name__, "YAML text")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise InputError(origin, f"{len(text)} characters", f"a YAML text of at most {MAX_BYTES} bytes")
    loader = None
    try:
        _prescan(text)
        loader = _Loader(text)
        return loader.get_single_data()
    except _Refused as exc:
        raise InputError(origin, exc.found, exc.allowed) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or "a syntax error"
        if "nesting depth" in str(problem):   # libyaml's own limit, met while reading ahead
            raise InputError(origin, f"nesting deeper than {MAX_DEPTH} levels{_line(mark)}",
                             f"lists and mappings nested at most {MAX_DEPTH} deep") from None
        raise InputError(origin, f"invalid YAML{_line(mark)}", f"a YAML mapping ({problem})") from None
    except (ValueError, OverflowError) as exc:   # a scalar Python cannot convert, e.g. an integer of 5000 digits
        raise InputError(origin, "a value that cannot be read as a number or text",
                         "numbers of ordinary size (an integer has at most 4300 digits) and plain text") from None
    except RecursionError:   # defensive: the depth limit should make this unreachable
        raise InputError(origin, "too deeply nested", f"lists and mappings nested at most {MAX_DEPTH} deep") from None
    finally:
        if loader is not None and hasattr(loader, "dispose"):
            loader.dispose()


def load_mapping(text: str, origin: str) -> dict:
    """A YAML document that must be a mapping (``key: value`` lines) with string keys."""
    data = load(text, origin)
    if data is None:
        raise InputError(origin, "an empty document", "a YAML mapping (key: value lines)")
    if not isinstance(data, dict):
        raise InputError(origin, f"a YAML {type(data).__name__}", "a YAML mapping (key: value lines)")
    return data


def read_text(path: Path, field: str, hint: str = "") -> str:
    """A UTF-8 text file of at most `MAX_BYTES`, or an InputError naming ``field`` and saying why not."""
    path = Path(path)
    try:
        is_file = path.is_file()
    except (OSError, ValueError):   # a name too long, a NUL byte in it
        is_file = False
    if not is_file:
        raise InputError(field, str(path), "an existing file" + (f" or one of: {hint}" if hint else ""))
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(field, str(path), f"a readable file ({exc.strerror or exc})") from None
    if len(raw) > MAX_BYTES:
        raise InputError(field, str(path), f"a file of at most {MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(field, str(path), f"a UTF-8 text (YAML) file (byte {exc.start} is not UTF-8)") from None
    return text.removeprefix("\ufeff")


# Unit text from users goes to pint, whose parser evaluates arithmetic: '10**10**10' as a "unit" runs
# for minutes computing a huge integer. Only plain unit expressions reach it.
MAX_UNIT_CHARS = 40
_UNIT_TOKEN = r"(?:[A-Za-zµμ_]+|1)(?:\s*(?:\*\*|\^)\s*-?[1-9])?"
_UNIT = re.compile(rf"\s*{_UNIT_TOKEN}(?:\s*[*/·]\s*{_UNIT_TOKEN})*\s*")


def plain_unit(text: str) -> bool:
    """True if ``text`` is a plain unit expression ('mg', 'L/h', 'mL/min', '1/h', 'm**2'), safe for pint."""
    return isinstance(text, str) and len(text) <= MAX_UNIT_CHARS and _UNIT.fullmatch(text) is not None
