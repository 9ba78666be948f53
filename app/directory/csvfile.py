"""Reading a directory CSV (platform_user_id,phone[,name]) into rows and per-line problems."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import ValidationError

from app.directory.service import UserRow

HEADER = "platform_user_id"


@dataclass
class ParsedFile:
    rows: list[UserRow] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)      # the file line of each row
    errors: list[tuple[int, str]] = field(default_factory=list)


def parse_csv(lines: Iterable[str]) -> ParsedFile:
    """Good rows with their line numbers, and 'what is wrong' for every bad line."""
    parsed = ParsedFile()
    reader = csv.reader(lines)
    for record in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue  # blank lines are not mistakes
        if line == 1 and record[0].strip().lower() == HEADER:
            continue
        problem = _problem(record)
        if problem is None:
            parsed.rows.append(_row(record))
            parsed.lines.append(line)
        else:
            parsed.errors.append((line, problem))
    return parsed


def _problem(record: list[str]) -> str | None:
    if not 2 <= len(record) <= 3:
        return f"expected 2 or 3 columns (platform_user_id,phone[,name]), got {len(record)}"
    try:
        _row(record)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        return f"{first['loc'][0]}: {first['msg'].removeprefix('Value error, ')}"
    return None


def _row(record: list[str]) -> UserRow:
    return UserRow(platform_user_id=record[0], phone=record[1],
                   name=record[2] if len(record) == 3 else None)
