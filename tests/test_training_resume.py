"""Interrupted `nrtool train inr2vec` and `nrtool train garment` runs resume from OUT.partial.

An interruption is simulated in-process: a progress whose ``advance`` raises KeyboardInterrupt
one step into an epoch (Ctrl-C raises it in Python; the CLI's SIGINT handler raises its own
exception, which the loops treat alike). Everything is tiny (3 garments, 6 INRs, 2-4 epochs,
coarse validation grids): about 30 s on one busy core.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli

EPOCHS = 4
DONE = 2  # epochs finished before the interruption


class CtrlCAfter:
    """A progress that presses Ctrl-C in the first step after ``epochs`` whole epochs."""

    def __init__(self, epochs: int, of: int) -> None:
        self.epochs, self.of = epochs, of

    @contextlib.contextmanager
    def task(self, description: str, total: int, unit: str = "items") -> Iterator:
        per_epoch = total // self.of
        done = [0]

        def advance(n: int = 1) -> None:
            done[0] += n
            if done[0] > self.epochs * per_epoch:
                raise KeyboardInterrupt

        yield advance


# --- inr2vec ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inrs(synth_shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nrtool.inr.config import preset
    from nrtool.inr.pipeline import fit_inrs

    out = tmp_path_factory.mktemp("resume_inrs") / "inrs.h5"  # `nrtool fit-inr --steps 5`, in-process (no start-up)
    fit_inrs([str(synth_shapes)], out, preset("tiny").with_overrides(steps=5), device="cpu")
    return out


def _train_inr2vec(inrs: Path, out: Path, epochs: int = EPOCHS, val_resolution: int = 16, **kwargs):
    from nrtool.inr2vec.config import inr2vec_preset, train_preset
    from nrtool.inr2vec.train import train_inr2vec

    settings = train_preset("tiny").with_overrides(epochs=epochs, batch=2, queries=50, seed=0, val_resolution=val_resolution)
    return train_inr2vec(inrs, out, inr2vec_preset("tiny"), settings, device="cpu", **kwargs)


def test_inr2vec_resumes_where_it_was_interrupted(inrs: Path, tmp_path: Path) -> None:
    out = tmp_path / "inr2vec.pt"
    partial = tmp_path / "inr2vec.pt.partial"
    with pytest.raises(KeyboardInterrupt):
        _train_inr2vec(inrs, out, progress=CtrlCAfter(DONE, EPOCHS))
    assert partial.exists() and not out.exists()

    report = _train_inr2vec(inrs, out)
    assert report.resumed_from_epoch == DONE + 1
    assert [h["epoch"] for h in report.history] == list(range(1, EPOCHS + 1))
    assert out.exists() and not partial.exists()

    # The same numbers as a run that was never interrupted: weights, optimiser and random states came back.
    whole = _train_inr2vec(inrs, tmp_path / "whole.pt")
    assert whole.resumed_from_epoch is None
    for resumed, uninterrupted in zip(report.history, whole.history):
        assert resumed["train_loss"] == pytest.approx(uninterrupted["train_loss"], rel=1e-3)


def test_inr2vec_refuses_the_state_of_other_settings(inrs: Path, tmp_path: Path) -> None:
    from nrtool.errors import InputFileError

    out = tmp_path / "inr2vec.pt"
    partial = tmp_path / "inr2vec.pt.partial"
    with pytest.raises(KeyboardInterrupt):
        _train_inr2vec(inrs, out, progress=CtrlCAfter(1, EPOCHS))
    with pytest.raises(InputFileError, match=r"inr2vec.pt.partial: holds an interrupted run with other settings.*"
                                             r"epochs 4 -> 3.*--restart"):
        _train_inr2vec(inrs, out, epochs=3)
    report = _train_inr2vec(inrs, out, epochs=3, restart=True)
    assert report.resumed_from_epoch is None and len(report.history) == 3
    assert out.exists() and not partial.exists()


def test_inr2vec_command_says_it_resumed(inrs: Path, tmp_path: Path) -> None:
    out = tmp_path / "inr2vec.pt"
    with pytest.raises(KeyboardInterrupt):  # the command's settings (validation grid 48)
        _train_inr2vec(inrs, out, epochs=2, val_resolution=48, progress=CtrlCAfter(1, 2))
    result = run_cli("train", "inr2vec", inrs, "--out", out, "--epochs", "2", "--batch", "2", "--queries", "50",
                        "--device", "cpu", "--json")
    assert "nrtool: resumed from epoch 2 of an interrupted run" in result.stderr
    report = json.loads(result.stdout)
    assert report["resumed_from_epoch"] == 2 and [h["epoch"] for h in report["history"]] == [1, 2]
    assert out.exists() and not (tmp_path / "inr2vec.pt.partial").exists()


# --- garment ---------------------------------------------------------------------------------

GARMENT_ARGS = ("--category", "top", "--preset", "tiny", "--val", "1", "--val-every", "2", "--val-resolution", "16",
                "--points", "64", "--queries", "100", "--batch", "2", "--device", "cpu")


@pytest.fixture(scope="module")
def garments(synth_body: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nrtool.synth.garments import make_garments

    root = tmp_path_factory.mktemp("resume_garments")  # `nrtool synth garments` on the session's body, in-process
    make_garments(synth_body, root / "g", tops=3, bottoms=0, seed=0, resolution=0.03, preview=False)
    return root / "g"


def _train_garment(garments: Path, out: Path, epochs: int = EPOCHS, **kwargs):
    from nrtool.garments.config import TrainSettings, garment_preset
    from nrtool.garments.train import train_garment

    config = garment_preset("tiny", points=64, queries=100, batch=2)  # as GARMENT_ARGS
    settings = TrainSettings(epochs=epochs, val_items=1, val_every=2, val_resolution=16)
    return train_garment([garments], out, config, settings, category="top", device="cpu", **kwargs)


def test_garment_resumes_where_it_was_interrupted(garments: Path, tmp_path: Path) -> None:
    out = tmp_path / "top.pt"
    partial = tmp_path / "top.pt.partial"
    with pytest.raises(KeyboardInterrupt):
        _train_garment(garments, out, progress=CtrlCAfter(DONE, EPOCHS))
    assert partial.exists() and not out.exists()

    report = _train_garment(garments, out)
    assert report.resumed_from_epoch == DONE + 1 and report.epochs == EPOCHS
    assert [h["epoch"] for h in report.history] == list(range(1, EPOCHS + 1))
    assert [h["epoch"] for h in report.history if "val_chamfer" in h] == [2, 4]
    assert out.exists() and not partial.exists()

    whole = _train_garment(garments, tmp_path / "whole.pt")
    for resumed, uninterrupted in zip(report.history, whole.history):
        assert resumed["loss"] == pytest.approx(uninterrupted["loss"], rel=1e-3)
    assert report.best["val_chamfer"] == pytest.approx(whole.best["val_chamfer"], rel=1e-3)


def test_garment_refuses_the_state_of_other_settings_until_restart(garments: Path, tmp_path: Path) -> None:
    from nrtool.errors import InputFileError

    out = tmp_path / "top.pt"
    partial = tmp_path / "top.pt.partial"
    with pytest.raises(KeyboardInterrupt):
        _train_garment(garments, out, progress=CtrlCAfter(1, EPOCHS))
    with pytest.raises(InputFileError) as refused:
        _train_garment(garments, out, epochs=3)
    assert str(refused.value) == ("{}: holds an interrupted run with other settings or inputs (epochs 4 -> 3); "
                                  "delete it or pass --restart to start `nrtool train garment` over".format(partial))
    assert partial.exists() and not out.exists()

    report = json.loads(run_cli("train", "garment", garments, "--out", out, "--epochs", "3", *GARMENT_ARGS,
                                   "--restart", "--json").stdout)
    assert report["resumed_from_epoch"] is None and len(report["history"]) == 3
    assert out.exists() and not partial.exists()
