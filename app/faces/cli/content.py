"""`sopbot content add|list|import`: the columns' content queue from the command line. The same
checks as POST /api/content and the console's content page (app/calendar/content.py `checked`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from app.faces.cli.support import EnvFile, cli_settings, fail, run_on_database

content_cli = typer.Typer(help="The content queue of the calendar's columns (《今日上新》, ...).",
                          no_args_is_help=True)
Text = Annotated[str, typer.Option(help="The item's body.")]
Url = Annotated[str | None, typer.Option(help="An http(s) address.")]


@content_cli.command("add")
def add(column: Annotated[str, typer.Argument(help="A column of sop_flows/calendar.yaml.")],
        title: Annotated[str, typer.Argument(help="The item's title.")],
        body: Text = "", link: Url = None, image: Url = None,
        env_file: EnvFile = None) -> None:
    """Queue one item at the end of its column."""
    fields = {"column": column, "title": title, "body": body, "link": link, "image": image}
    added = _run(env_file, [fields])
    typer.echo(f"queued #{added[0]} in {column}")


@content_cli.command("import")
def import_file(file: Annotated[Path, typer.Argument(help=(
        "A YAML (or JSON) list of items: column, title, body, link, image."))],
        env_file: EnvFile = None) -> None:
    """Queue every item of FILE, in its order, or none if one is refused."""
    import yaml

    try:
        items = yaml.safe_load(file.read_text(encoding="utf-8"))
    except Exception as exc:  # unreadable or not YAML: one line, not a traceback
        fail(f"{file}: {type(exc).__name__}: {exc}")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        fail(f"{file}: a list of items (column, title, body, link, image) is expected")
    added = _run(env_file, items)
    typer.echo(f"queued {len(added)} item(s) from {file}")


@content_cli.command("list")
def list_items(column: Annotated[str | None, typer.Option(help="Only this column.")] = None,
               env_file: EnvFile = None) -> None:
    """The queued items of each column, in the order the slots will take them."""
    from app.flows import load_flows

    columns = load_flows(cli_settings(env_file).flows_path).calendar.columns
    wanted = {c: label for c, label in columns.items() if column in (None, c)}
    typer.echo("\n".join(run_on_database(_list, env_file, wanted)))


def _run(env_file: Path | None, items: list[dict[str, Any]]) -> list[int]:
    """Check every item, then queue them all in one unit of work; their ids."""
    from app.calendar import content
    from app.engine.yamlconf import ConfigFileError
    from app.flows import load_flows

    try:
        columns = load_flows(cli_settings(env_file).flows_path).calendar.columns
    except ConfigFileError as exc:
        fail(str(exc))
    rows = []
    for n, item in enumerate(items, 1):
        try:
            rows.append(content.checked(columns, *_fields(item)))
        except content.ItemProblem as exc:
            fail(f"item {n}: {exc}" if len(items) > 1 else str(exc))
    return run_on_database(_add, env_file, rows)


# An item's fields; `image_url` is what POST /api/content calls the image, so a file written
# for the API imports too.
FIELDS = ("column", "title", "body", "link", "image", "image_url")


def _fields(item: dict[str, Any]) -> tuple[str, str, str, str | None, str | None]:
    """column, title, body, link, image of one item of a file, each a text (or absent)."""
    from app.calendar.content import ItemProblem

    unknown = set(item) - set(FIELDS)
    if unknown:
        raise ItemProblem(f"unknown field(s) {', '.join(sorted(unknown))}")
    wrong = [name for name in FIELDS if item.get(name) is not None
             and not isinstance(item[name], str)]
    if wrong:
        raise ItemProblem(f"{', '.join(wrong)}: a text is expected")
    return (item.get("column") or "", item.get("title") or "", item.get("body") or "",
            item.get("link"), item.get("image") or item.get("image_url"))


async def _add(database_url: str, rows: list[tuple[str, str, str, str | None, str | None]]
               ) -> list[int]:
    from app.calendar import content
    from app.engine.db import Database, utcnow

    db = Database(database_url)
    try:
        async with db.unit_of_work() as session:
            return [(await content.add(session, column, title, body, link, utcnow(), image)).id
                    for column, title, body, link, image in rows]
    finally:
        await db.dispose()


async def _list(database_url: str, columns: dict[str, str]) -> list[str]:
    from app.calendar import content
    from app.engine.db import Database

    db = Database(database_url)
    lines = []
    try:
        async with db.reader() as session:
            for column, label in columns.items():
                queued = await content.queued(session, column, limit=500)
                lines.append(f"{column} 《{label}》: {len(queued)} queued")
                lines += [f"  #{i.id} {i.title}" + (f" {i.link}" if i.link else "")
                          + (f" [image {i.image_url}]" if i.image_url else "") for i in queued]
    finally:
        await db.dispose()
    return lines
