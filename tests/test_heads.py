"""Classifier and retrieval heads on embeddings, through the CLI (in process; one classification
through the installed `nrtool`)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import assert_clean_failure, run_cli, run_nrtool

from nrtool.artifacts.core import ItemInfo
from nrtool.artifacts.embeddings import Embeddings, write_embeddings

CLASSES = 3


def make_embeddings(
    path: Path, dim: int = 32, train: int = 30, test: int = 10, separation: float = 4.0,
    shuffle_labels: bool = False, seed: int = 0,
) -> Path:
    """Gaussian blobs (std 0.5 per axis) around class centres ``separation`` from the origin."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLASSES, dim))
    centres *= separation / np.linalg.norm(centres, axis=1, keepdims=True)
    vectors, items = [], []
    for c in range(CLASSES):
        for i in range(train + test):
            vectors.append(centres[c] + rng.normal(size=dim) * 0.5)
            items.append(ItemInfo(f"c{c}_{i:03d}", f"class{c}", "train" if i < train else "test",
                                  f"/data/c{c}_{i}.ply", len(items), np.zeros(3), 1.0))
    if shuffle_labels:
        names = [item.class_name for item in items]
        rng.shuffle(names)
        for item, name in zip(items, names):
            item.class_name = name
    write_embeddings(path, Embeddings(np.asarray(vectors, np.float32), items))
    return path


@pytest.fixture(scope="module")
def trained(shared_artifacts) -> tuple[Path, Path, dict]:
    """(embeddings, checkpoint, training summary): one tiny training shared by the tests (cached; read-only)."""

    def build(folder: Path) -> None:
        make_embeddings(folder / "emb.h5")
        result = run_cli("train", "classifier", folder / "emb.h5", "--out", folder / "clf.pt", "--preset", "tiny",
                         "--json", "-q")
        (folder / "report.json").write_text(result.stdout)

    folder = shared_artifacts.get("heads-classifier", {}, build)
    report = json.loads((folder / "report.json").read_text())
    return folder / "emb.h5", folder / "clf.pt", {**report, **report["details"]}


# ---------------------------------------------------------------- classifier


def test_train_then_classify_the_test_split(trained: tuple[Path, Path, dict], tmp_path: Path) -> None:
    emb, model, summary = trained
    assert summary["dim"] == 32 and summary["classes"] == ["class0", "class1", "class2"]
    # Validation is carved from the 90 train items (10 % of each class); test is never trained on.
    assert summary["val_items"] == 9 and summary["train_items"] == 81
    assert Path(summary["curves"]).stat().st_size > 0
    out = tmp_path / "pred.h5"
    # The installed entry point, end to end: a trained checkpoint classifies.
    report = json.loads(run_nrtool("classify", emb, "--model", model, "--out", out, "--split", "test", "--json").stdout)
    assert report["items"] == 30 and report["evaluated"] == 30
    assert report["accuracy"] > 0.9, report  # chance is 1/3
    assert set(report["per_class"]) == {"class0", "class1", "class2"}
    confusion = np.array(report["confusion"])
    assert confusion.shape == (3, 3) and confusion.sum() == 30 and (confusion.sum(1) == 10).all()
    assert Path(report["plot"]) == tmp_path / "pred.confusion.png" and Path(report["plot"]).stat().st_size > 0
    with h5py.File(out, "r") as handle:
        assert handle.attrs["nrtool_kind"] == "predictions"
        assert json.loads(handle.attrs["classes"]) == summary["classes"]
        probabilities = handle["probabilities"][()]
        predicted = handle["predicted"][()]
        labels = handle["labels"][()]
        assert probabilities.shape == (30, 3) and probabilities.dtype == np.float32
        np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)
        np.testing.assert_array_equal(predicted, probabilities.argmax(1))
        assert abs(float((predicted == labels).mean()) - report["accuracy"]) < 1e-9
    info = json.loads(run_cli("info", out, "--json").stdout)
    assert info["kind"] == "predictions" and info["per_split"] == {"test": 30}
    # The human-readable report: per-class table and confusion matrix, plus an explicit --plot.
    text = run_cli("classify", emb, "--model", model, "--out", tmp_path / "p2.h5", "--split", "test",
                      "--plot", tmp_path / "cm.png").stdout
    assert "accuracy" in text and "confusion" in text and "class2" in text
    assert (tmp_path / "cm.png").exists() and not (tmp_path / "p2.confusion.png").exists()


def test_checkpoint_is_plain_data(trained: tuple[Path, Path, dict]) -> None:
    import torch

    from nrtool.heads.classifier import EmbeddingClassifier, load_classifier

    _, model, _ = trained
    data = torch.load(model, weights_only=True)
    assert data["dim"] == 32 and data["classes"] == ["class0", "class1", "class2"]
    assert data["config"]["preset"] == "tiny" and data["config"]["hidden"] == [128, 64]
    assert [h["epoch"] for h in data["history"] if "val_accuracy" in h] == list(range(1, data["config"]["epochs"] + 1))
    net = EmbeddingClassifier(32, 3, data["config"]["hidden"])
    net.load_state_dict(data["state_dict"])
    classifier = load_classifier(model)
    assert not classifier.model.training  # eval mode: BatchNorm uses its running statistics


def test_train_val_split_is_stratified_and_seeded() -> None:
    from nrtool.io.naming import train_val_split

    labels = np.array([0] * 20 + [1] * 10 + [2] * 1 + [0] * 5 + [-1] * 3)
    splits = ["train"] * 31 + ["test"] * 5 + [None] * 3
    train, val = train_val_split(labels, splits, 0.1, seed=0)
    assert set(train) | set(val) == set(range(31)) and not set(train) & set(val)
    assert sorted(labels[val].tolist()) == [0, 0, 1]  # 10 % per class, >= 1, never the only item
    np.testing.assert_array_equal(val, train_val_split(labels, splits, 0.1, seed=0)[1])
    assert not np.array_equal(val, train_val_split(labels, splits, 0.1, seed=1)[1])
    # An explicit 'val' split is used as is.
    explicit = ["train"] * 28 + ["val"] * 3 + ["test"] * 5 + [None] * 3
    train, val = train_val_split(labels, explicit, 0.1, seed=0)
    assert val.tolist() == [28, 29, 30]


def test_augmented_copies_stay_on_their_shapes_side() -> None:
    from nrtool.io.naming import source_group, train_val_split

    names = [f"{c}{i}" + (f"_aug{k}" if k else "") for c in "ab" for i in range(6) for k in range(3)]
    labels = np.array([0] * 18 + [1] * 18)
    groups = [source_group(n) for n in names]
    assert groups[:3] == ["a0", "a0", "a0"]
    for seed in range(5):
        train, val = train_val_split(labels, ["train"] * 36, 0.2, seed, groups)
        val_shapes = {groups[i] for i in val}
        assert val_shapes and not val_shapes & {groups[i] for i in train}
        assert len(val) == 3 * len(val_shapes) and {labels[i] for i in val} == {0, 1}


# ---------------------------------------------------------------- retrieval


def test_retrieval_math_on_a_hand_made_example() -> None:
    from nrtool.errors import NrtoolError
    from nrtool.heads.retrieval import map_at_k, nearest_neighbours

    points = np.array([[0.0], [1.0], [10.0], [11.0], [12.0]])
    labels = ["a", "a", "b", "b", "a"]
    # Leave-one-out k=1: 0->1 a, 1->0 a, 2->3 b, 3->2 b (tie with 4, lower index wins), 4->3 b (miss).
    # k=2: 0->{1,2} 1/2, 1->{0,2} 1/2, 2->{3,4} 1/2, 3->{2,4} 1/2, 4->{3,2} 0.
    scores = map_at_k(points, labels, points, labels, [1, 2], same_set=True)
    assert scores == pytest.approx({1: 0.8, 2: 0.4})
    indices, distances = nearest_neighbours(points, points, 2, exclude_self=True)
    assert indices.tolist() == [[1, 2], [0, 2], [3, 4], [2, 4], [3, 2]]
    assert distances[:, 0].tolist() == [1.0, 1.0, 1.0, 1.0, 1.0]
    # Separate gallery: the query itself is not in it, nothing is excluded.
    gallery = np.array([[1.0], [2.0], [3.0]])
    assert map_at_k(np.array([[0.0]]), ["a"], gallery, ["a", "b", "a"], [1, 3]) == pytest.approx({1: 1.0, 3: 2 / 3})
    with pytest.raises(NrtoolError):
        nearest_neighbours(points, points, 5, exclude_self=True)
    # The artifact-level API: classes matched by name, unlabelled items left out.
    from nrtool.heads.retrieval import retrieval_map

    items = [ItemInfo(f"i{i}", name, None, "", i, np.zeros(3), 1.0) for i, name in enumerate(labels)]
    items.append(ItemInfo("unlabelled", None, None, "", 5, np.zeros(3), 1.0))
    embeddings = Embeddings(np.vstack([points, [[0.5]]]).astype(np.float32), items)
    assert retrieval_map(embeddings, None, [1, 2]) == pytest.approx({1: 0.8, 2: 0.4})


def test_retrieve_separated_and_shuffled(tmp_path: Path) -> None:
    emb = make_embeddings(tmp_path / "emb.h5")
    result = json.loads(run_cli("retrieve", emb, "--k", "1", "5", "10", "--json").stdout)
    assert set(result) >= {"map@1", "map@5", "map@10"}
    assert result["map@1"] > 0.9 and result["same_set"] and result["queries"] == 120
    shuffled = make_embeddings(tmp_path / "shuffled.h5", shuffle_labels=True)
    noise = json.loads(run_cli("retrieve", shuffled, "--k", "1,5", "--json").stdout)
    assert noise["map@1"] < 0.6 and noise["map@5"] < 0.6, noise  # chance ~1/3
    # Test queries against the train gallery of the same file.
    cross = json.loads(run_cli("retrieve", emb, "--split", "test", "--gallery", emb, "--gallery-split", "train",
                                  "--k", "1", "--json").stdout)
    assert cross["queries"] == 30 and cross["gallery"] == 90 and cross["map@1"] > 0.9
    assert "mAP@1" in run_cli("retrieve", emb, "--k", "1").stdout
    too_many = run_cli("retrieve", emb, "--split", "test", "--k", "30", check=False)
    assert_clean_failure(too_many, str(emb))


def test_retrieve_png_grid(tmp_path: Path) -> None:
    from PIL import Image

    from nrtool.heads.retrieval import _grid_queries

    emb = make_embeddings(tmp_path / "emb.h5")
    png = tmp_path / "grid.png"
    run_cli("retrieve", emb, "--k", "1", "4", "--png", png, "--png-rows", "3")
    width, height = Image.open(png).size
    assert (width, height) == (round(1.9 * 5 * 90), round(2.1 * 3 * 90))  # query + 4 neighbours, 3 rows
    # One query per class first, then in order.
    assert _grid_queries(np.array(["a", "a", "b", "c", "b"]), 4) == [0, 2, 3, 1]
    missing_folder = tmp_path / "nowhere" / "grid.png"
    assert_clean_failure(run_cli("retrieve", emb, "--png", missing_folder, check=False), "nowhere")


def test_retrieve_png_grid_reuses_the_scored_neighbour_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nrtool.heads import retrieval

    emb = make_embeddings(tmp_path / "emb.h5")
    searches = []
    search = retrieval.nearest_neighbours

    def counted(*args: object, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
        searches.append(args[2] if len(args) > 2 else kwargs["k"])
        return search(*args, **kwargs)

    monkeypatch.setattr(retrieval, "nearest_neighbours", counted)
    result = retrieval.retrieve_files(emb, ks=(1, 4), splits=["test"], gallery_path=emb, gallery_splits=["train"],
                                      png=tmp_path / "grid.png", png_rows=3)
    assert searches == [4] and (tmp_path / "grid.png").stat().st_size > 0  # one search, for mAP@1, mAP@4 and the grid
    from nrtool.artifacts.embeddings import load_embeddings, select

    query, gallery = (select(load_embeddings(emb), [split]) for split in ("test", "train"))
    scores = retrieval.retrieval_map(query, gallery, [1, 4])
    assert (result["map@1"], result["map@4"]) == (scores[1], scores[4])


# ---------------------------------------------------------------- bad input


def test_bad_inputs_fail_in_one_line(trained: tuple[Path, Path, dict], tmp_path: Path) -> None:
    emb, model, _ = trained
    out = tmp_path / "pred.h5"
    wrong_kind = tmp_path / "inrs.h5"
    with h5py.File(wrong_kind, "w") as handle:
        handle.attrs["nrtool_kind"] = "inrs"
        handle.attrs["nrtool_schema"] = 1
    result = run_cli("classify", wrong_kind, "--model", model, "--out", out, check=False)
    assert_clean_failure(result, str(wrong_kind), out)
    assert "'inrs'" in result.stderr and "'embeddings'" in result.stderr
    assert_clean_failure(run_cli("train", "classifier", wrong_kind, "--out", tmp_path / "c.pt", check=False),
                          str(wrong_kind), tmp_path / "c.pt")
    assert_clean_failure(run_cli("retrieve", wrong_kind, check=False), str(wrong_kind))

    missing = tmp_path / "missing.pt"
    assert_clean_failure(run_cli("classify", emb, "--model", missing, "--out", out, check=False), str(missing), out)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    assert_clean_failure(run_cli("classify", emb, "--model", empty, "--out", out, check=False), str(empty), out)
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("not a checkpoint")
    assert_clean_failure(run_cli("classify", emb, "--model", garbage, "--out", out, check=False), str(garbage), out)

    pickled = tmp_path / "objects.pt"
    import torch

    torch.save({"format": "nrtool-classifier", "path": Path("x")}, pickled)  # arbitrary objects: refused
    assert_clean_failure(run_cli("classify", emb, "--model", pickled, "--out", out, check=False), str(pickled), out)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(model.read_bytes()[:300])
    assert_clean_failure(run_cli("classify", emb, "--model", truncated, "--out", out, check=False), str(truncated), out)

    narrow = make_embeddings(tmp_path / "narrow.h5", dim=16)
    result = run_cli("classify", narrow, "--model", model, "--out", out, check=False)
    assert_clean_failure(result, str(model), out)
    assert "32-d" in result.stderr and "16-d" in result.stderr

    empty_h5 = tmp_path / "empty.h5"
    empty_h5.write_bytes(b"")
    assert_clean_failure(run_cli("classify", empty_h5, "--model", model, "--out", out, check=False), str(empty_h5), out)
    assert_clean_failure(run_cli("train", "classifier", empty_h5, "--out", tmp_path / "c.pt", check=False),
                          str(empty_h5), tmp_path / "c.pt")
    assert_clean_failure(run_cli("retrieve", empty_h5, check=False), str(empty_h5))
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_help_has_examples() -> None:
    for command in (["train", "classifier"], ["classify"], ["retrieve"]):
        assert "Example" in run_cli(*command, "--help").stdout
