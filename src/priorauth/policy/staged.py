"""Check a YAML document through named stages, collecting every problem with its line.

The policy loader (codes PA...) and the safety data loader (PS...) share these stages:

    parse       x1xx  the text is YAML (x101), a mapping at the top (x102), no key twice (x103)
    schema      x2xx  the data fits the document's pydantic model (x201: a wrong value, an
                      unknown key or kind, a missing key)
    references  x3xx  names resolve, ids are unique, ... (each document's own checks)
    lint        x4xx  warnings (each document's own)

A stage runs only if the ones before it found no error. Every issue carries the path in the
document and the line it starts on, so an author can go straight to it; a misspelt key, kind or
value is answered with the nearest names the document allows ("did you mean ...?").
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from priorauth.errors import PolicyError, PolicyIssue

__all__ = [
    "Checked",
    "Lines",
    "Path",
    "Report",
    "Stages",
    "check_text",
    "did_you_mean",
    "dotted",
    "load_text",
]

Path = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """` (did you mean 'criteria'?)` for the nearest of `options`, or "" when none is near."""
    options = list(options)
    same = [o for o in options if o.casefold() == word.casefold()]
    near = same or difflib.get_close_matches(word, options, n=2, cutoff=0.6)
    if not near:
        return ""
    return f" (did you mean {' or '.join(repr(n) for n in near)}?)"


class Lines:
    """Maps a path in the YAML document to the line it starts on (1-based), and notes any key
    written twice in one mapping (YAML would silently keep the last)."""

    def __init__(self, root: yaml.Node | None) -> None:
        self._lines: dict[Path, int] = {}
        self.repeated: list[tuple[Path, int, int]] = []
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, path: Path) -> None:
        self._lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                name = key.value
                line = key.start_mark.line + 1
                if name in first and name != "<<":
                    self.repeated.append(((*path, name), first[name], line))
                first.setdefault(name, line)
                self._walk(value, (*path, name))
                # The key's own line stands for the path (a value may start on the next one).
                self._lines[(*path, name)] = line
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, (*path, index))

    def line(self, path: Path) -> int | None:
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return self._lines.get(())


def dotted(path: Path) -> str:
    """`("facts", "age", 0)` -> `facts.age[0]`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class Report:
    """Where a stage writes what it finds: errors, or warnings in the lint stage."""

    def __init__(self, stage: str, lines: Lines | None, issues: list[PolicyIssue]) -> None:
        self.stage, self._lines, self._issues = stage, lines, issues

    def __call__(self, code: str, path: Path, message: str) -> None:
        line = self._lines.line(path) if self._lines is not None else None
        severity: Any = "warning" if self.stage == "lint" else "error"
        self._issues.append(PolicyIssue(code, self.stage, dotted(path), line, severity, message))


@dataclass(frozen=True)
class Stages(Generic[M]):
    """A kind of document: its code prefix and model, and its own reference and lint checks."""

    prefix: str
    model: type[M]
    # What to tell an author whose document is YAML but not a mapping.
    not_a_mapping: str
    references: Callable[[M, Report], None]
    lint: Callable[[M, Report], None]
    # What the items of a tagged union are called, by the top-level key they sit under
    # ({"facts": "fact"}: "unknown fact kind 'observaton'").
    kinds: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Checked(Generic[M]):
    """What the stages found: the document (when no stage found an error) and every issue."""

    value: M | None
    issues: list[PolicyIssue]

    @property
    def errors(self) -> list[PolicyIssue]:
        return [i for i in self.issues if i.severity == "error"]


# PyYAML's problems, as sentences an author can act on. Each pattern is matched against the
# problem PyYAML reports; `{opened}` is the line the enclosing construct started on.
_YAML_PROBLEMS: tuple[tuple[str, str], ...] = (
    (r"found character '\\t'", "a tab character: YAML indents with spaces only"),
    (
        r"found character '(.)' that cannot start any token",
        "a value cannot start with '{0}': put the value in quotes",
    ),
    (
        r"mapping values are not allowed here",
        "a 'key: value' where none can be: a value that holds ': ' needs quotes, or a line "
        "above is not a 'key: value' line",
    ),
    (r"expected ',' or '\]'", "a [ list ] is not closed, or its items lack commas{opened}"),
    (r"expected ',' or '\}'", "a { mapping } is not closed, or its entries lack commas{opened}"),
    (r"found unexpected end of stream", "a quoted value is never closed{opened}"),
    (
        r"expected <block end>, but found '\?'",
        "a list item and a 'key:' are mixed at one indentation{opened}",
    ),
    (r"expected <block end>", "this line is indented differently from the lines above{opened}"),
    (r"could not find expected ':'", "a line inside a mapping has no ':'{opened}"),
    (r"found undefined alias '(.*)'", "'*{0}' names an anchor '&{0}' defined nowhere above"),
    (r"found duplicate anchor", "an anchor (&name) is defined twice"),
)


_YAML_CONTEXTS = {
    "flow sequence": "[ list",
    "flow mapping": "{ mapping",
    "block mapping": "mapping",
    "block collection": "list",
    "quoted scalar": "quoted value",
    "simple key": "key",
}


def _yaml_problem(exc: yaml.YAMLError) -> tuple[int | None, str]:
    """The line of a YAML syntax error and a plain sentence saying what is wrong there."""
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context_mark = getattr(exc, "context_mark", None)
    opened = ""
    if context_mark is not None and line is not None and context_mark.line + 1 != line:
        context = str(getattr(exc, "context", "") or "")
        what = next((w for k, w in _YAML_CONTEXTS.items() if k in context), "construct")
        opened = f" (the {what} begins on line {context_mark.line + 1})"
    sentence = problem
    for pattern, plain in _YAML_PROBLEMS:
        found = re.search(pattern, problem)
        if found:
            sentence = plain.format(*found.groups(), opened=opened)
            break
    column = f" at column {mark.column + 1}" if mark is not None else ""
    return line, f"not valid YAML{column}: {sentence}"


# --- schema errors, in the author's words -----------------------------------------------------


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _tag(model: type[BaseModel]) -> str | None:
    """The `kind` literal a model of a tagged union carries, if any."""
    kind = model.model_fields.get("kind")
    if kind is None or get_origin(kind.annotation) is not Literal:
        return None
    (value,) = get_args(kind.annotation)
    return str(value)


def _model_field(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info.annotation
    return None


def _keys(model: type[BaseModel]) -> list[str]:
    """The keys a model accepts, as an author writes them (aliases where given)."""
    return [info.alias or name for name, info in model.model_fields.items()]


def _locate(model: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[Path, Any]:
    """A pydantic error location as the author's path (union tags and validator names left
    out), and the type found at its end (None where the model says nothing)."""
    path: list[str | int] = []
    current: Any = model
    for part in loc:
        if isinstance(part, str) and (part.startswith("function-") or part == "[key]"):
            continue
        current = _unwrap(current)
        if _is_union(current):
            members = [_unwrap(a) for a in get_args(current) if a is not type(None)]
            tagged = [m for m in members if _is_model(m) and _tag(m) == part]
            if tagged:
                current = tagged[0]
                continue  # the tag names the member; the author never wrote it as a key
            if isinstance(part, str) and part in {_type_name(m) for m in members}:
                current = next(m for m in members if _type_name(m) == part)
                continue
            models = [m for m in members if _is_model(m)]
            current = models[0] if len(models) == 1 else (members[0] if members else None)
            current = _unwrap(current)
        path.append(part)
        origin = get_origin(current)
        if _is_model(current) and isinstance(part, str):
            current = _model_field(current, part)
        elif origin in (list, tuple) and isinstance(part, int):
            args = get_args(current)
            current = args[0] if args else None
        elif origin is dict:
            args = get_args(current)
            current = args[1] if len(args) == 2 else None
        else:
            current = None
    current = _unwrap(current)
    if _is_union(current):
        # An optional part (`continuation: Continuation | None`): the model it holds.
        models = [_unwrap(a) for a in get_args(current) if _is_model(_unwrap(a))]
        current = models[0] if len(models) == 1 else current
    return tuple(path), current


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", str(annotation))


def _schema_issue(error: Any, model: type[BaseModel], kinds: Mapping[str, str]) -> tuple[Path, str]:
    """A pydantic error as (path, message): an unknown key or kind with the
    nearest names allowed there, a value outside a fixed list with the nearest allowed one."""
    loc = tuple(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        path, _ = _locate(model, loc)
        _, owner = _locate(model, loc[:-1])
        hint = did_you_mean(str(loc[-1]), _keys(owner)) if _is_model(owner) else ""
        if not hint and _is_model(owner):
            hint = f"; allowed here: {', '.join(_keys(owner))}"
        return path, f"unknown key{hint}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        path, union = _locate(model, loc)
        key = str(ctx.get("discriminator", "kind")).strip("'")
        noun = kinds.get(str(path[0]), "") if path else ""
        noun = f"{noun} kind" if noun else key
        members = get_args(union) if _is_union(union) else ()
        tags = [t for t in (_tag(_unwrap(m)) for m in members if _is_model(_unwrap(m))) if t]
        if kind == "union_tag_not_found":
            return (*path, key), f"a {noun} is needed (one of {', '.join(tags)})"
        tag = str(ctx.get("tag", ""))
        hint = did_you_mean(tag, tags) or f" (one of {', '.join(tags)})"
        return (*path, key), f"unknown {noun} {tag!r}{hint}"
    path, _ = _locate(model, loc)
    if kind == "missing":
        return path, "a required key is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        given = error.get("input")
        hint = did_you_mean(str(given), expected) if isinstance(given, str) else ""
        hint = hint or f" (one of {', '.join(expected)})"
        message = f"{given!r} is not allowed here{hint}"
    return path, message


_SCALAR_MEMBERS = frozenset({"str", "int", "float", "bool", "date", "datetime"})


def _telling(errors: list[Any]) -> list[Any]:
    """The errors worth showing. A value that fits none of a union's members gets an error from
    each; "not a valid string" for a mapping that was meant as a criterion is noise when the
    criterion's own errors say what is wrong inside it."""
    kept = []
    for error in errors:
        loc = tuple(error["loc"])
        # pydantic names the union member tried by its type: `when.str` beside `when.CriterionSpec`.
        member = loc[-1] if loc else None
        scalar = member in _SCALAR_MEMBERS and str(error["type"]).endswith("_type")
        if scalar and any(
            len(other["loc"]) > len(loc)
            and tuple(other["loc"][: len(loc) - 1]) == loc[:-1]
            and other["loc"][len(loc) - 1] != member
            for other in errors
        ):
            continue
        kept.append(error)
    return kept


def check_text(text: str, stages: Stages[M]) -> Checked[M]:
    """Run every stage over a document's YAML text."""
    issues: list[PolicyIssue] = []
    prefix = stages.prefix
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line, message = _yaml_problem(exc)
        issues.append(PolicyIssue(f"{prefix}101", "parse", "", line, "error", message))
        return Checked(None, issues)
    lines = Lines(node)
    parse = Report("parse", lines, issues)
    if not isinstance(raw, dict):
        parse(f"{prefix}102", (), stages.not_a_mapping)
        return Checked(None, issues)
    for path, first, again in lines.repeated:
        issues.append(
            PolicyIssue(
                f"{prefix}103",
                "parse",
                dotted(path),
                again,
                "error",
                f"the key {path[-1]!r} is written twice in one mapping (lines {first} and "
                f"{again}); YAML would keep only the last",
            )
        )
    if issues:
        return Checked(None, issues)
    try:
        document = stages.model.model_validate(raw)
    except ValidationError as exc:
        schema = Report("schema", lines, issues)
        for error in _telling(exc.errors(include_url=False)):
            path, message = _schema_issue(error, stages.model, stages.kinds)
            schema(f"{prefix}201", path, message)
        return Checked(None, issues)
    stages.references(document, Report("references", lines, issues))
    if any(i.severity == "error" for i in issues):
        return Checked(None, issues)
    stages.lint(document, Report("lint", lines, issues))
    return Checked(document, issues)


def load_text(text: str, stages: Stages[M], source: str) -> M:
    """The document in `text`, or PolicyError (naming `source`) with every issue found."""
    result = check_text(text, stages)
    if result.value is None:
        raise PolicyError(source, result.issues)
    return result.value
