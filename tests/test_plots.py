"""`nrtool plot tsne` and the t-SNE layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import assert_clean_failure, run_cli


def _embeddings(path: Path, per_class: int, seed: int = 0) -> list[str]:
    from nrtool.artifacts.core import ItemInfo
    from nrtool.artifacts.embeddings import Embeddings, write_embeddings

    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, size=(3, 16))
    vectors, items = [], []
    for c, centre in enumerate(centres):
        for i in range(per_class):
            vectors.append(centre + rng.normal(0, 0.5, 16))
            items.append(ItemInfo(f"c{c}_{i}", f"class{c}", "train", "", len(items), np.zeros(3), 1.0))
    write_embeddings(path, Embeddings(np.array(vectors), items))
    return [item.class_name for item in items]


def test_tsne_keeps_separated_classes_apart(tmp_path: Path) -> None:
    from nrtool.artifacts.embeddings import load_embeddings
    from nrtool.plots import tsne_plot

    classes = np.array(_embeddings(tmp_path / "emb.h5", 15))
    data = load_embeddings(tmp_path / "emb.h5")
    layout = tsne_plot(data.vectors, list(classes), tmp_path / "t.png", perplexity=10)
    centroids = np.stack([layout[classes == c].mean(0) for c in sorted(set(classes))])
    spread = max(np.linalg.norm(layout[classes == c] - centroids[i], axis=1).mean() for i, c in enumerate(sorted(set(classes))))
    gaps = [np.linalg.norm(centroids[i] - centroids[j]) for i in range(3) for j in range(i + 1, 3)]
    assert min(gaps) > 2 * spread
    assert (tmp_path / "t.png").stat().st_size > 0


def test_plot_tsne_cli(tmp_path: Path) -> None:
    _embeddings(tmp_path / "emb.h5", 5)
    run_cli("plot", "tsne", tmp_path / "emb.h5", "--out", tmp_path / "tsne.png", "--quiet")
    assert (tmp_path / "tsne.png").stat().st_size > 0
    from nrtool.artifacts.core import ItemInfo
    from nrtool.artifacts.embeddings import Embeddings, write_embeddings

    write_embeddings(tmp_path / "two.h5", Embeddings(np.ones((2, 4)), [ItemInfo(f"x{i}", None, None, "", i, np.zeros(3), 1.0) for i in range(2)]))
    assert_clean_failure(run_cli("plot", "tsne", tmp_path / "two.h5", "--out", tmp_path / "t2.png", check=False),
                         "two.h5", tmp_path / "t2.png")
