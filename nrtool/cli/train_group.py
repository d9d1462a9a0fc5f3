"""The ``nrtool train ...`` command group; each model family adds its own subcommand."""

from __future__ import annotations

import typer

from nrtool.cli.main import app

train_app = typer.Typer(help="Train models: inr2vec encoders, classifiers on embeddings.", no_args_is_help=True)
app.add_typer(train_app, name="train")
