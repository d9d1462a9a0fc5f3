"""The ``nrtool train ...`` command group; each model family adds its own subcommand."""

from __future__ import annotations

import typer

from nrtool.cli.main import app

train_app = typer.Typer(help="Train models: inr2vec encoders, classifiers on embeddings.", no_args_is_help=True)
app.add_typer(train_app, name="train")

#: For the training commands that resume an interrupted run from ``OUT.partial``.
RESTART_OPTION = typer.Option(False, "--restart", help="Discard the state of an interrupted run (OUT.partial) and start over.")


def note_resumed(first_epoch: int | None) -> None:
    """Tell the user that this run continued an interrupted one."""
    from nrtool.cli.common import note

    if first_epoch is not None:
        note(f"resumed from epoch {first_epoch} of an interrupted run")
