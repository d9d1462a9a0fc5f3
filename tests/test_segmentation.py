"""Part segmentation from embeddings (issue 18 task 1, thesis Sec. 5.5.4): the procedural labelled
clouds, ShapeNet-Part import, the part-IoU metrics, and the chain fit-inr -> inr2vec -> train
segmenter -> segment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_clean_failure, run_cli

from nrtool.heads.part_iou import miou_report, shape_iou
from nrtool.io.part_clouds import load_labelled_cloud
from nrtool.synth.parts import PART_CLASSES, Primitive, make_part_cloud, sample_visible

# ---------------------------------------------------------------- metrics


def test_shape_iou_counts_a_part_absent_from_both_as_one() -> None:
    truth = np.array([0, 0, 1, 1])
    predicted = np.array([0, 1, 1, 1])
    # part 0: 1 / 2; part 1: 2 / 3; part 2 (in neither): 1
    assert shape_iou(predicted, truth, [0, 1]) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert shape_iou(predicted, truth, [0, 1, 2]) == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)


def test_class_miou_weighs_classes_equally_and_instance_miou_shapes() -> None:
    report = miou_report([1.0, 1.0, 1.0, 0.4], ["a", "a", "a", "b"])
    assert report["instance_miou"] == pytest.approx(3.4 / 4)
    assert report["class_miou"] == pytest.approx((1.0 + 0.4) / 2)
    assert report["per_class"] == {"a": 1.0, "b": pytest.approx(0.4)}


# ---------------------------------------------------------------- procedural labelled clouds


def test_points_hidden_inside_another_primitive_are_dropped_and_the_rest_stay_uniform() -> None:
    rng = np.random.default_rng(0)
    # A unit cube and a 0.8 cube poking out of its +x face (no coplanar faces).
    a = Primitive("box", (0.5, 0.5, 0.5), (0.0, 0.0, 0.0), 0)
    b = Primitive("box", (0.4, 0.4, 0.4), (0.6, 0.0, 0.0), 1)
    points, labels = sample_visible([a, b], 20_000, rng)
    assert not (a.inside(points) | b.inside(points)).any()
    # Visible area: a's 6 minus the 0.64 of its +x face under b; b's 3.84 minus its -x face (0.64)
    # and the inner 0.3 of its four sides (0.96) -- 5.36 against 2.24.
    assert np.mean(labels == 0) == pytest.approx(5.36 / 7.6, abs=0.015)
    assert points[labels == 1, 0].min() >= 0.5 - 1e-3  # b's visible part starts where a ends
    on_a = points[labels == 0]
    # Uniform by area on a's visible part: its -x face holds 1 of its 5.36 visible units.
    assert np.mean(np.isclose(on_a[:, 0], -0.5)) == pytest.approx(1 / 5.36, abs=0.015)


def test_ellipsoid_and_torus_samples_lie_on_their_surfaces() -> None:
    rng = np.random.default_rng(1)
    ellipsoid = Primitive("ellipsoid", (0.9, 0.3, 0.5), (0.0, 0.0, 0.0), 0).sample(2000, rng)
    assert np.allclose(((ellipsoid / [0.9, 0.3, 0.5]) ** 2).sum(1), 1.0)
    torus = Primitive("torus", (0.6, 0.2), (0.0, 0.0, 0.0), 0).sample(2000, rng)
    assert np.allclose((np.hypot(torus[:, 0], torus[:, 2]) - 0.6) ** 2 + torus[:, 1] ** 2, 0.04)
    # The area element favours the outer half of the ring: (R + r) / (R - r) = 2 times as dense
    # at the outer equator as at the inner one; overall, share outside = 1/2 + r / (pi R).
    assert np.mean(np.hypot(torus[:, 0], torus[:, 2]) > 0.6) == pytest.approx(0.5 + 0.2 / (np.pi * 0.6), abs=0.03)


def test_part_clouds_are_deterministic_and_carry_every_part_of_their_class() -> None:
    for name, (parts, _) in PART_CLASSES.items():
        points, labels = make_part_cloud(name, seed=3, item=2, points=1024)
        again, labels_again = make_part_cloud(name, seed=3, item=2, points=1024)
        assert np.array_equal(points, again) and np.array_equal(labels, labels_again)
        assert points.shape == (1024, 3) and np.linalg.norm(points, axis=1).max() == pytest.approx(0.9, abs=1e-5)
        assert set(labels.tolist()) == set(range(len(parts))), name


def test_synth_parts_writes_global_labels_that_fit_inr_reads(tmp_path: Path) -> None:
    run_cli("synth", "shapes", "--parts", "--families", "mug,lamp", "--per-class", "2", "--points", "256",
            "--out", tmp_path / "parts", "--quiet")
    mug = load_labelled_cloud(next((tmp_path / "parts" / "mug" / "train").glob("*.npz")))
    lamp = load_labelled_cloud(next((tmp_path / "parts" / "lamp" / "test").glob("*.npz")))
    assert mug.part_names == ["mug/body", "mug/handle", "lamp/base", "lamp/pole", "lamp/shade"]
    assert set(mug.labels.tolist()) == {0, 1} and set(lamp.labels.tolist()) == {2, 3, 4}
    from nrtool.io import load_shape

    assert load_shape(next((tmp_path / "parts" / "mug" / "train").glob("*.npz"))).kind == "points"
    assert_clean_failure(run_cli("synth", "shapes", "--parts", "--classes", "9", "--out", tmp_path / "x", check=False),
                         "5 classes", tmp_path / "x")


def test_labelled_cloud_errors_name_the_file(tmp_path: Path) -> None:
    from nrtool.errors import InputFileError

    cases = {
        "nolabels.npz": ({"points": np.zeros((4, 3))}, "needs 'points' and 'labels'"),
        "short.npz": ({"points": np.zeros((4, 3)), "labels": np.zeros(3, np.int64)}, "one per point"),
        "negative.npz": ({"points": np.zeros((2, 3)), "labels": np.array([0, -1])}, "non-negative"),
        "nan.npz": ({"points": np.full((2, 3), np.nan), "labels": np.zeros(2, np.int64)}, "NaN"),
    }
    for name, (arrays, problem) in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(InputFileError, match=problem) as error:
            load_labelled_cloud(tmp_path / name)
        assert name in str(error.value)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputFileError, match="junk.npz"):
        load_labelled_cloud(tmp_path / "junk.npz")


# ---------------------------------------------------------------- ShapeNet-Part import


def _fake_shapenet_part(root: Path) -> dict[str, np.ndarray]:
    """ShapeNet-Part's v0_normal layout with procedural clouds: 2 categories, 3 splits."""
    synsets = {"Mug": "03797390", "Lamp": "03636649"}
    (root / "train_test_split").mkdir(parents=True)
    (root / "synsetoffset2category.txt").write_text("".join(f"{c}\t{s}\n" for c, s in synsets.items()))
    lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    rows = {}
    for c, (category, synset) in enumerate(synsets.items()):
        (root / synset).mkdir()
        for item, split in enumerate(["train", "train", "val", "test"]):
            points, labels = make_part_cloud(category.lower(), seed=0, item=item, points=300)
            table = np.concatenate([points, np.zeros_like(points), (labels + 2 * c)[:, None]], axis=1)
            shape = f"{synset[-3:]}shape{item}"
            np.savetxt(root / synset / f"{shape}.txt", table, fmt="%.6f")
            lists[split].append(f"shape_data/{synset}/{shape}")
            rows[f"{category}/{split}/{shape}"] = table
    for split, entries in lists.items():
        (root / "train_test_split" / f"shuffled_{split}_file_list.json").write_text(json.dumps(entries))
    return rows


def test_import_shapenet_part_writes_labelled_clouds_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nrtool.io.part_clouds as part_clouds

    root, out = tmp_path / "shapenet", tmp_path / "imported"
    rows = _fake_shapenet_part(root)
    # An interrupted import: shapes are read 2 at a time and the 5th (the first val one) is damaged.
    monkeypatch.setattr(part_clouds, "IMPORT_CHUNK", 2)
    damaged = root / "03797390" / "390shape2.txt"
    good = damaged.read_text()
    damaged.write_text("1 2 3\n")
    result = run_cli("import", "shapenet-part", root, "--out", out, "--points", "200", check=False)
    assert_clean_failure(result, "390shape2.txt", out)
    assert (tmp_path / "imported.parts").is_dir()
    # Rerun once repaired: the finished chunks are not read again (their sources are gone now).
    damaged.write_text(good)
    (root / "03797390" / "390shape0.txt").unlink()
    run_cli("import", "shapenet-part", root, "--out", out, "--points", "200", "--quiet")
    assert not (tmp_path / "imported.parts").exists()
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.npz"))
    assert files == sorted(f"{key}.npz" for key in rows)
    cloud = load_labelled_cloud(out / "Lamp" / "val" / "649shape2.npz")
    source = rows["Lamp/val/649shape2"]
    assert len(cloud.points) == 200 and set(cloud.labels.tolist()) <= {2, 3, 4}
    # A subset of the source's rows, each point keeping its own label.
    from scipy.spatial import cKDTree

    distance, row = cKDTree(source[:, :3]).query(cloud.points)
    assert distance.max() < 1e-6 and len(set(row.tolist())) == 200
    assert np.array_equal(source[row, 6], cloud.labels)
    assert_clean_failure(run_cli("import", "shapenet-part", tmp_path, "--out", tmp_path / "o2", check=False),
                         "synsetoffset2category.txt", tmp_path / "o2")
    assert_clean_failure(run_cli("import", "shapenet-part", root, "--out", tmp_path / "o3", "--category", "Car",
                                 check=False), "car", tmp_path / "o3")


# ---------------------------------------------------------------- the chain on inr2vec embeddings


@pytest.fixture(scope="module")
def part_chain(shared_artifacts) -> dict[str, Path]:
    """5 procedural part classes x 8 clouds (6 train / 2 test), tiny udf INRs fitted for 150 steps,
    inr2vec (5 epochs, validated once on 4 INRs), embeddings, a tiny segmenter: cached across sessions."""

    def build(folder: Path) -> None:
        from nrtool.inr2vec.config import inr2vec_preset, train_preset
        from nrtool.inr2vec.train import train_inr2vec

        run_cli("synth", "shapes", "--parts", "--per-class", "8", "--out", folder / "parts", "--quiet")
        run_cli("fit-inr", folder / "parts", "--out", folder / "inrs.h5", "--preset", "tiny", "--steps", "150", "--quiet")
        settings = train_preset("tiny").with_overrides(epochs=5, batch=8, val_every=5, val_items=4)
        train_inr2vec(folder / "inrs.h5", folder / "inr2vec.pt", inr2vec_preset("tiny"), settings, device="cpu")
        run_cli("encode", folder / "inrs.h5", "--model", folder / "inr2vec.pt", "--out", folder / "emb.h5", "--quiet")
        run_cli("train", "segmenter", folder / "emb.h5", "--out", folder / "seg.pt", "--quiet")

    folder = shared_artifacts.get("part-segmentation", {}, build)
    return {name: folder / name for name in ("inrs.h5", "emb.h5", "seg.pt")}


def test_segmenter_beats_the_majority_part_on_unseen_shapes_and_their_inr_clouds(part_chain: dict[str, Path],
                                                                              tmp_path: Path) -> None:
    from nrtool.artifacts.segmentation import load_segmentation

    out = tmp_path / "seg.h5"
    report = json.loads(run_cli("segment", part_chain["emb.h5"], "--model", part_chain["seg.pt"], "--inrs",
                                part_chain["inrs.h5"], "--split", "test", "--out", out, "--json", "--quiet").stdout)
    assert report["items"] == 10 and Path(report["png"]).stat().st_size > 0
    majority = report["baselines"]["majority_part"]["instance_miou"]
    # 10 unseen shapes of 5 classes, 13 parts. Measured 0.85 on the original points and 0.84 on
    # clouds reconstructed from the INRs, against 0.275 when every point gets its class's commonest part.
    assert report["original"]["instance_miou"] >= 0.75 > majority + 0.3, report
    assert report["recon"]["instance_miou"] >= 0.7, report
    assert report["original"]["class_miou"] >= 0.7
    segmentation = load_segmentation(out)
    recon = segmentation.clouds["recon"]
    for item, predicted, truth in zip(segmentation.items, recon.predicted, recon.truth):
        parts = set(segmentation.class_parts[item.class_name])
        assert set(predicted.tolist()) <= parts and len(predicted) == 2048  # only the class's own parts
        assert set(truth.tolist()) <= parts
    original = segmentation.clouds["original"]
    source = load_labelled_cloud(segmentation.items[0].source)
    assert np.allclose(original.points[0], source.points, atol=1e-5)  # stored in the source's units
    assert np.array_equal(original.truth[0], source.labels)
    info = json.loads(run_cli("info", out, "--json").stdout)
    assert info["kind"] == "segmentation" and info["items"] == 10


def test_segment_and_train_segmenter_refuse_bad_inputs(part_chain: dict[str, Path], fitted_inrs: Path,
                                                       tmp_path: Path) -> None:
    out = tmp_path / "seg.h5"
    raw = tmp_path / "raw.h5"  # embeddings of mesh INRs: other dimension, sources without part labels
    run_cli("encode", fitted_inrs, "--encoder", "raw", "--out", raw, "--quiet")
    assert_clean_failure(run_cli("segment", raw, "--model", part_chain["seg.pt"], "--out", out, check=False),
                         "256-d embeddings", out)
    assert_clean_failure(run_cli("train", "segmenter", raw, "--out", tmp_path / "s.pt", "--epochs", "1", check=False),
                         ".ply", tmp_path / "s.pt")
    assert_clean_failure(run_cli("segment", part_chain["emb.h5"], "--model", part_chain["seg.pt"], "--inrs", fitted_inrs,
                                 "--out", out, check=False), "udf", out)
    assert_clean_failure(run_cli("segment", part_chain["emb.h5"], "--model", part_chain["emb.h5"], "--out", out,
                                 check=False), "emb.h5", out)
    assert_clean_failure(run_cli("segment", part_chain["emb.h5"], "--model", part_chain["seg.pt"], "--split", "nope",
                                 "--out", out, check=False), "nope", out)
