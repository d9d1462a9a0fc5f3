"""``nrtool info``: what any artifact holds."""

from __future__ import annotations

from pathlib import Path

import typer

from nrtool.cli.app import app
from nrtool.cli.common import console, print_json


@app.command("info")
def info(
    path: Path = typer.Argument(..., help="Any nrtool artifact (.h5)."),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Print an artifact's kind, schema, counts, attributes and provenance.

    Example: `nrtool info inrs.h5 --json`
    """
    from rich.table import Table

    from nrtool.artifacts.core import describe

    summary = describe(path)
    if json_out:
        print_json(summary)
        return
    table = Table(title=f"{path} — {summary['kind']} (schema {summary['schema']})", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key in ("items", "per_class", "per_split", "version", "created", "command"):
        if summary.get(key) is not None:
            table.add_row(key, str(summary[key]))
    for key, value in summary["attributes"].items():
        text = str(value)
        table.add_row(key, text if len(text) < 300 else text[:300] + " ...")
    for entry in summary["inputs"]:
        table.add_row("input", f"{entry['path']} (sha256 {entry['sha256'][:12]})")
    for name, meta in summary["datasets"].items():
        table.add_row(f"/{name}", f"{tuple(meta['shape'])} {meta['dtype']}")
    console().print(table)
