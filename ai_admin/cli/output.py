"""What a client command prints: its data as a table, JSON or CSV, and its failures.

The format is ``--format``, else a table when stdout is a terminal and JSON when it is not
(a pipe, a file), so ``ai-admin list | jq`` needs no flag. JSON is the agent's ``data`` as it
came; a table and CSV show either records (one row each, the columns a view names) or one
object's fields (one ``key, value`` row each, nested keys joined with dots).

Failures go to stderr: the code, the message and each suggestion, in colour only when stderr
is a terminal (and ``NO_COLOR`` is not set). rich is imported only to draw a table.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TextIO

from ai_admin.cli.exits import CliFailure
from ai_admin.cli.units import when

__all__ = [
    "Column",
    "Fields",
    "Format",
    "Records",
    "choose",
    "emit",
    "flatten",
    "generic_view",
    "print_failure",
]


_PIPED_WIDTH = 200


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def choose(fmt: Format | None, stream: TextIO | None = None) -> Format:
    """The format asked for, else a table on a terminal and JSON otherwise."""
    if fmt is not None:
        return fmt
    return Format.TABLE if (stream or sys.stdout).isatty() else Format.JSON


@dataclass(frozen=True)
class Column:
    """A record's column: its header, its raw value (CSV), and how a table shows it."""

    header: str
    value: Callable[[Mapping[str, Any]], Any]
    text: Callable[[Any], str] = lambda v: "" if v is None else str(v)
    justify: str = "left"
    in_table: bool = True  # False: CSV only (a table has no room for it)
    no_wrap: bool = False


@dataclass(frozen=True)
class Records:
    """Rows of one kind (tasks, schedules, ...), with a line under the table (paging)."""

    rows: Sequence[Mapping[str, Any]]
    columns: Sequence[Column]
    footer: str = ""
    title: str = ""


@dataclass(frozen=True)
class Fields:
    """One object's fields."""

    values: Mapping[str, Any]
    title: str = ""


def flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}``; lists stay whole."""
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping) and item:
            flat.update(flatten(item, name + "."))
        else:
            flat[name] = item
    return flat


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)


def _shown(key: str, value: Any) -> str:
    """A table's text of ``key``'s value: a time (``*_at``, Unix seconds) in local time."""
    if key.endswith("_at") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return when(value)
    return _cell(value)


def _csv_cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return "" if value is None else value


def generic_view(data: Any, title: str = "") -> Records | Fields:
    """A view of data of unknown shape: the records of its one list of objects (nested keys
    as columns of their own, ``limits.max_concurrent``; the rest of its keys under the table),
    else its fields."""
    if isinstance(data, list) and all(isinstance(r, Mapping) for r in data):
        rows = [flatten(r) for r in data]
        return Records(rows, _columns_of(rows), title=title)
    if not isinstance(data, Mapping):
        return Fields({"value": data}, title)
    lists = [k for k, v in data.items() if isinstance(v, list) and v and isinstance(v[0], Mapping)]
    if len(lists) == 1:
        rows = [flatten(r) for r in data[lists[0]]]
        rest = {k: v for k, v in data.items() if k != lists[0] and not isinstance(v, (list, dict))}
        footer = "  ".join(f"{k}: {_cell(v)}" for k, v in rest.items())
        return Records(rows, _columns_of(rows), footer, title or lists[0])
    return Fields(data, title)


def _columns_of(rows: Sequence[Mapping[str, Any]]) -> list[Column]:
    keys: list[str] = []
    for row in rows[:50]:
        keys += [k for k in row if k not in keys]
    return [Column(key, _getter(key), _text_of(key)) for key in keys]


def _text_of(key: str) -> Callable[[Any], str]:
    return lambda value: _shown(key, value)


def _getter(key: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda row: row.get(key)


def emit(data: Any, fmt: Format, view: Records | Fields | None = None) -> None:
    """Print ``data`` in ``fmt``; ``view`` says what a table and CSV show (default: a view
    of the data's own shape)."""
    if fmt is Format.JSON:
        json.dump(data, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return
    view = view or generic_view(data)
    if fmt is Format.CSV:
        _write_csv(view, sys.stdout)
    else:
        _draw_table(view)


def _write_csv(view: Records | Fields, out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    if isinstance(view, Records):
        writer.writerow([c.header for c in view.columns])
        for row in view.rows:
            writer.writerow([_csv_cell(c.value(row)) for c in view.columns])
    else:
        writer.writerow(["key", "value"])
        for key, value in flatten(view.values).items():
            writer.writerow([key, _csv_cell(value)])


def _draw_table(view: Records | Fields) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # On a terminal, its width; elsewhere (a file, a pipe) wide enough for whole rows.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else _PIPED_WIDTH)
    table = Table(title=view.title or None, title_justify="left", header_style="bold")
    if isinstance(view, Records):
        columns = [c for c in view.columns if c.in_table]
        for column in columns:
            table.add_column(
                column.header.upper(),
                justify=column.justify,  # type: ignore[arg-type]
                no_wrap=column.no_wrap,
                min_width=len(column.header) if column.no_wrap else None,
            )
        for row in view.rows:
            table.add_row(*(Text(column.text(column.value(row))) for column in columns))
    else:
        table.add_column("KEY", style="bold")
        table.add_column("VALUE")
        for key, value in flatten(view.values).items():
            table.add_row(Text(key), Text(_shown(key, value)))
    console.print(table)
    if isinstance(view, Records) and view.footer:
        console.print(view.footer, markup=False, style="dim")


def _colour() -> bool:
    return sys.stderr.isatty() and "NO_COLOR" not in os.environ


def print_failure(failure: CliFailure) -> None:
    """``ai-admin: CODE: message`` and each suggestion on stderr."""
    red, dim, bold, end = ("\033[31m", "\033[2m", "\033[1m", "\033[0m") if _colour() else ("",) * 4
    lines = [f"{red}{bold}ai-admin: {failure.code}{end}{red}: {failure.message}{end}"]
    lines += [f"{dim}  - {suggestion}{end}" for suggestion in failure.suggestions]
    print("\n".join(lines), file=sys.stderr)
