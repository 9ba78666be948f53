"""Load a YAML file into a pydantic model, with errors that say file, line and what is wrong."""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
PATH_PREFIX = re.compile(r"^([A-Za-z_][\w]*(?:\.\w+)*): ")


class ConfigFileError(Exception):
    """A YAML configuration file is unreadable, not YAML, or not what its schema expects."""

    def __init__(self, path: Path, line: int | None, message: str) -> None:
        self.path, self.line, self.message = path, line, message
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


class ConfigFileErrors(ConfigFileError):
    """Several problems, in one file or across files: `sopbot check` reports them all at once
    (an operator fixing one a run is slow). Its first problem is its path, line and message."""

    def __init__(self, errors: list[ConfigFileError]) -> None:
        self.errors = errors
        first = errors[0]
        Exception.__init__(self, "\n".join(str(e) for e in errors))
        self.path, self.line, self.message = first.path, first.line, first.message


def combined(errors: list[ConfigFileError]) -> ConfigFileError:
    """One error to raise for one or more (flattened: never an aggregate inside another)."""
    errors = [one for error in errors for one in flatten(error)]
    return errors[0] if len(errors) == 1 else ConfigFileErrors(errors)


def flatten(error: ConfigFileError) -> list[ConfigFileError]:
    return list(error.errors) if isinstance(error, ConfigFileErrors) else [error]


def load_model(path: Path, model: type[M]) -> M:
    """Parse `path` and validate it as `model`; raise ConfigFileError pointing at the bad line."""
    text = _read(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        _reject_duplicate_keys(path, root)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ConfigFileError(path, line, f"invalid YAML: {exc.problem}") from None
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        raise combined([ConfigFileError(path, _line_of(root, loc), message)
                        for loc, message in _problems(model, errors)]) from None


def _problems(model: type[BaseModel], errors: Iterable[Any]) -> Iterator[tuple[list[str], str]]:
    """Each validation error as (place, message), an unknown key first and as unknown (with the
    closest valid name): a misspelt key is one mistake, not an unknown key plus a missing one."""
    errors = list(errors)
    unknown = [e for e in errors if e["type"] == "extra_forbidden"]
    explained: set[tuple[str, ...]] = set()
    for error in unknown:
        loc = [str(part) for part in error["loc"]]
        valid = _field_names(model, loc[:-1])
        close = difflib.get_close_matches(loc[-1], valid, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else (
            f" (valid: {', '.join(sorted(valid))})" if valid else "")
        if close:
            explained.add((*loc[:-1], close[0]))
        yield loc, f"{'.'.join(loc)}: unknown key{hint}"
    for error in errors:
        loc = [str(part) for part in error["loc"]]
        if error in unknown or (error["type"] == "missing" and tuple(loc) in explained):
            continue
        message = error["msg"].removeprefix("Value error, ")
        label = ".".join(loc) + ": " if loc else ""
        if not loc and (named := PATH_PREFIX.match(message)):
            # A check across fields (a model validator) names the place itself: "rules.3: ..."
            loc = named.group(1).split(".")
        yield loc, f"{label}{message}"


def _field_names(model: type[BaseModel], loc: list[str]) -> list[str]:
    """The keys valid at `loc` inside `model` (best effort: [] where it cannot tell)."""
    kind: Any = model
    for part in loc:
        kind = _inner(kind)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            field = kind.model_fields.get(part)
            if field is None:
                return []
            kind = field.annotation
        elif get_origin(kind) in (list, dict, tuple):  # an item: tuple[X, ...] or dict[str, X]
            kind = next((a for a in reversed(get_args(kind)) if a is not Ellipsis), None)
        else:
            return []
    kind = _inner(kind)
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return [field.alias or name for name, field in kind.model_fields.items()]
    return []


def _inner(kind: Any) -> Any:
    """X for Optional[X] / X | None; the type itself otherwise."""
    if get_origin(kind) in (Union, types.UnionType):
        options = [arg for arg in get_args(kind) if arg is not type(None)]
        return options[0] if len(options) == 1 else kind
    return kind


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError(path, None, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(path, None, f"cannot read: {type(exc).__name__}") from None


def _reject_duplicate_keys(path: Path, node: Any) -> None:
    # PyYAML silently keeps the last of two equal keys; an operator's typo must not vanish.
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key, value in node.value:
            if key.value in seen:
                raise ConfigFileError(path, key.start_mark.line + 1, f"duplicate key {key.value!r}")
            seen.add(key.value)
            _reject_duplicate_keys(path, value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _reject_duplicate_keys(path, item)


def line_of(path: Path, loc: list[str]) -> int | None:
    """The line of `loc` in a file already known to parse (for checks made after loading)."""
    try:
        return _line_of(yaml.compose(_read(path), Loader=yaml.SafeLoader), loc)
    except (yaml.YAMLError, ConfigFileError):
        return None


def _line_of(root: Any, loc: list[str]) -> int | None:
    """The line of the deepest node on `loc` that exists in the document."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in loc:
        node = _child(node, part)
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def _child(node: Any, part: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        return next((v for k, v in node.value if str(k.value) == part), None)
    if isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
        return node.value[int(part)]
    return None
