"""Shape retrieval by L2 nearest neighbours in embedding space (inr2vec thesis, Sec. 5.5.2).

For each query the ``k`` closest gallery embeddings are retrieved; the score of a query is the
fraction of them that share its class, and ``mAP@k`` is that precision averaged over the queries
(the thesis's definition; it is the mean precision@k, not the ranked average precision of IR).

Classes are matched by *name*, so query and gallery may come from different artifacts whose class
lists differ. Items without a label are left out of both sides: their agreement is undefined.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nrtool.errors import InputFileError, NrtoolError

if TYPE_CHECKING:
    from nrtool.artifacts.embeddings import Embeddings

#: Queries per distance block: bounds memory at QUERY_BLOCK x gallery float64 distances.
QUERY_BLOCK = 1024


def nearest_neighbours(
    query: np.ndarray, gallery: np.ndarray, k: int, exclude_self: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest gallery rows of each query row under the L2 distance.

    Args:
        query: (Q, D) vectors.
        gallery: (G, D) vectors.
        k: neighbours per query.
        exclude_self: ``query`` *is* ``gallery`` (same rows, same order): query ``i`` never
            retrieves gallery row ``i`` (leave-one-out).

    Returns:
        ``(indices, distances)``, both (Q, k), closest first; ties broken by gallery index so
        results are deterministic.
    """
    query = np.asarray(query, dtype=np.float64)
    gallery = np.asarray(gallery, dtype=np.float64)
    available = len(gallery) - (1 if exclude_self else 0)
    if exclude_self and query.shape != gallery.shape:
        raise NrtoolError("exclude_self needs the query and gallery to be the same set")
    if not 1 <= k <= available:
        raise NrtoolError(f"k={k} impossible: the gallery offers {available} neighbours per query")
    gallery_sq = (gallery**2).sum(1)
    indices = np.empty((len(query), k), dtype=np.int64)
    distances = np.empty((len(query), k), dtype=np.float64)
    for start in range(0, len(query), QUERY_BLOCK):
        block = query[start : start + QUERY_BLOCK]
        # |q - g|^2 = |q|^2 + |g|^2 - 2 q.g: one matmul instead of a (Q, G, D) difference tensor.
        d2 = (block**2).sum(1)[:, None] + gallery_sq[None, :] - 2.0 * block @ gallery.T
        np.maximum(d2, 0.0, out=d2)  # rounding can make a zero distance slightly negative
        if exclude_self:
            rows = np.arange(len(block))
            d2[rows, start + rows] = np.inf
        # A stable full sort breaks ties by gallery index (argpartition would not); its cost is
        # negligible at the gallery sizes of shape datasets (thousands).
        order = np.argsort(d2, axis=1, kind="stable")[:, :k]
        indices[start : start + len(block)] = order
        distances[start : start + len(block)] = np.sqrt(np.take_along_axis(d2, order, axis=1))
    return indices, distances


@dataclass
class Retrieval:
    """mAP@k scores and the neighbour search they were computed from (reused by the PNG grid)."""

    scores: dict[int, float]  # mAP@k for each k
    indices: np.ndarray  # (Q, max k) gallery rows, closest first (see nearest_neighbours)
    distances: np.ndarray  # (Q, max k) L2 distances to them


def retrieve_vectors(
    query_vectors: np.ndarray,
    query_labels: Sequence[Any],
    gallery_vectors: np.ndarray,
    gallery_labels: Sequence[Any],
    ks: Sequence[int],
    same_set: bool = False,
) -> Retrieval:
    """One ``max(ks)``-nearest-neighbour search, scored as mAP@k for each ``k``.

    mAP@k is the mean over queries of the fraction of the k nearest sharing the query's label.
    Labels are compared with ``==`` (class names or indices from one shared list). With
    ``same_set`` the query set is the gallery and each query's own row is excluded.
    """
    ks = sorted({int(k) for k in ks})
    if not ks:
        raise NrtoolError("give at least one k")
    if len(query_vectors) == 0:
        raise NrtoolError("no labelled query items")
    query_labels = np.asarray(query_labels)
    gallery_labels = np.asarray(gallery_labels)
    indices, distances = nearest_neighbours(query_vectors, gallery_vectors, max(ks), exclude_self=same_set)
    agree = gallery_labels[indices] == query_labels[:, None]  # (Q, kmax)
    # Cumulative hits give precision@k for every k from one neighbour search.
    hits = np.cumsum(agree, axis=1)
    return Retrieval({k: float((hits[:, k - 1] / k).mean()) for k in ks}, indices, distances)


def map_at_k(
    query_vectors: np.ndarray,
    query_labels: Sequence[Any],
    gallery_vectors: np.ndarray,
    gallery_labels: Sequence[Any],
    ks: Sequence[int],
    same_set: bool = False,
) -> dict[int, float]:
    """mAP@k for each ``k``: the scores of :func:`retrieve_vectors`."""
    return retrieve_vectors(query_vectors, query_labels, gallery_vectors, gallery_labels, ks, same_set).scores


def _labelled(embeddings: Embeddings) -> tuple[np.ndarray, np.ndarray]:
    keep = [i for i, item in enumerate(embeddings.items) if item.class_name is not None]
    names = np.array([embeddings.items[i].class_name for i in keep], dtype=object)
    return np.asarray(embeddings.vectors)[keep], names


def retrieve_embeddings(
    query: Embeddings,
    gallery: Embeddings | None,
    ks: Sequence[int],
    same_set: bool | None = None,
) -> Retrieval:
    """:func:`retrieve_vectors` of ``query`` items against ``gallery`` (the query set itself when ``None``).

    ``same_set`` defaults to ``gallery is None or gallery is query``: each query then retrieves
    from the others only. Unlabelled items are left out on both sides, so the neighbour indices
    count labelled items only.
    """
    if same_set is None:
        same_set = gallery is None or gallery is query
    if gallery is None:
        gallery = query
    query_vectors, query_names = _labelled(query)
    if same_set:
        gallery_vectors, gallery_names = query_vectors, query_names
    else:
        gallery_vectors, gallery_names = _labelled(gallery)
    if query_vectors.shape[1:] != gallery_vectors.shape[1:]:
        raise NrtoolError(
            f"query embeddings are {query_vectors.shape[1]}-d but gallery ones {gallery_vectors.shape[1]}-d"
        )
    return retrieve_vectors(query_vectors, query_names, gallery_vectors, gallery_names, ks, same_set=same_set)


def retrieval_map(
    query: Embeddings,
    gallery: Embeddings | None,
    ks: Sequence[int],
    same_set: bool | None = None,
) -> dict[int, float]:
    """mAP@k of ``query`` items against ``gallery``: the scores of :func:`retrieve_embeddings`."""
    return retrieve_embeddings(query, gallery, ks, same_set).scores


def retrieve_files(
    query_path: str | os.PathLike[str],
    gallery_path: str | os.PathLike[str] | None = None,
    ks: Sequence[int] = (1, 5, 10),
    splits: Sequence[str] = (),
    gallery_splits: Sequence[str] = (),
    png: str | os.PathLike[str] | None = None,
    png_rows: int = 6,
) -> dict[str, Any]:
    """mAP@k between ``embeddings`` artifacts; ``{"map@1": ..., ..., "queries", "gallery"}``.

    Without ``gallery_path`` the (split-filtered) query set is its own gallery, leave-one-out.
    With ``png``, a grid of ``png_rows`` queries (one per class first) and their ``max(ks)``
    neighbours is drawn from the items' source shapes.
    """
    from nrtool.artifacts.embeddings import load_embeddings, select

    query = select(load_embeddings(query_path), list(splits))
    labelled = sum(item.class_name is not None for item in query.items)
    if labelled == 0:
        what = f"items with split {' or '.join(splits)} and a label" if splits else "labelled items"
        raise InputFileError(query_path, f"no {what}: retrieval is scored by class agreement")
    if gallery_path is None:
        if gallery_splits:
            raise NrtoolError("--gallery-split needs --gallery (without it the queries are the gallery)")
        gallery, same_set, where = query, True, query_path
    else:
        gallery = select(load_embeddings(gallery_path), list(gallery_splits))
        same_set, where = False, gallery_path
        if not any(item.class_name is not None for item in gallery.items):
            raise InputFileError(gallery_path, "no labelled gallery items: retrieval is scored by class agreement")
        if gallery.vectors.shape[1] != query.vectors.shape[1]:
            raise InputFileError(
                gallery_path, f"holds {gallery.vectors.shape[1]}-d embeddings but {query_path} holds {query.vectors.shape[1]}-d"
            )
    gallery_size = sum(item.class_name is not None for item in gallery.items)
    available = gallery_size - (1 if same_set else 0)
    too_big = [k for k in ks if k > available]
    if too_big:
        raise InputFileError(where, f"k={max(too_big)} exceeds the {available} gallery neighbours available per query")
    if any(k < 1 for k in ks):
        raise NrtoolError(f"k must be at least 1, got {min(ks)}")
    retrieval = retrieve_embeddings(query, gallery, ks, same_set=same_set)
    if png is not None:
        retrieval_grid(query, gallery, max(ks), png, rows=png_rows, same_set=same_set, neighbours=retrieval)
    return {
        **{f"map@{k}": value for k, value in retrieval.scores.items()},
        "queries": labelled,
        "gallery": gallery_size,
        "same_set": same_set,
    }


def _grid_queries(names: np.ndarray, rows: int) -> list[int]:
    """Up to ``rows`` query indices: the first item of each class in turn, so classes vary."""
    order: list[int] = []
    first_of_class = {name: int(np.flatnonzero(names == name)[0]) for name in dict.fromkeys(names.tolist())}
    order.extend(list(first_of_class.values())[:rows])
    for index in range(len(names)):
        if len(order) >= rows:
            break
        if index not in order:
            order.append(index)
    return order


def retrieval_grid(
    query: Embeddings,
    gallery: Embeddings,
    k: int,
    png: str | os.PathLike[str],
    rows: int = 6,
    same_set: bool = False,
    neighbours: Retrieval | None = None,
) -> None:
    """PNG: each row a query shape and its ``k`` nearest gallery shapes, framed green when the
    neighbour's class matches and red when not. Shapes are drawn from their source files.

    ``neighbours``: the :func:`retrieve_embeddings` result of the same query, gallery and
    ``same_set`` with at least ``k`` neighbours, so the search is not run again.
    """
    from nrtool.plots import shape_grid

    keep_q = [i for i, item in enumerate(query.items) if item.class_name is not None]
    keep_g = keep_q if same_set else [i for i, item in enumerate(gallery.items) if item.class_name is not None]
    q_vectors, q_names = _labelled(query)
    g_vectors, g_names = (q_vectors, q_names) if same_set else _labelled(gallery)
    chosen = _grid_queries(q_names, rows)
    if neighbours is None:
        indices, distances = nearest_neighbours(q_vectors, g_vectors, k, exclude_self=same_set)
    elif neighbours.indices.shape[1] < k:
        raise NrtoolError(f"the neighbours given hold {neighbours.indices.shape[1]} per query, the grid needs {k}")
    else:
        indices, distances = neighbours.indices[:, :k], neighbours.distances[:, :k]
    cells: list[list[tuple[str, str, bool | None]]] = []
    for row in chosen:
        q_item = query.items[keep_q[row]]
        line: list[tuple[str, str, bool | None]] = [(q_item.source, f"query: {q_item.name}\n{q_names[row]}", None)]
        for col in range(k):
            g_item = gallery.items[keep_g[indices[row, col]]]
            title = f"{g_item.name}\n{g_names[indices[row, col]]}  d={distances[row, col]:.2f}"
            line.append((g_item.source, title, bool(g_names[indices[row, col]] == q_names[row])))
        cells.append(line)
    shape_grid(cells, png, title=f"retrieval: {k} nearest neighbours by L2 in embedding space")
