"""Load a YAML file into a pydantic model, with errors that say file, line and what is wrong."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

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
        first = exc.errors(include_url=False, include_input=False)[0]
        loc = [str(part) for part in first["loc"]]
        message = first["msg"].removeprefix("Value error, ")
        label = ".".join(loc) + ": " if loc else ""
        if not loc and (named := PATH_PREFIX.match(message)):
            # A check across fields (a model validator) names the place itself: "rules.3: ..."
            loc = named.group(1).split(".")
        raise ConfigFileError(path, _line_of(root, loc), f"{label}{message}") from None


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
