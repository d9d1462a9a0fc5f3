"""The inr2vec pipeline's results side by side (issue 14): `make -f pipelines/inr2vec.mk table`.

Reads the artifacts and JSON reports that ``pipelines/inr2vec.mk`` leaves in its OUT folder and
prints one Markdown table: the INRs' own fidelity on the test split, then for inr2vec, ProbeGen
and the raw weights the test accuracy of the MLP classifier (`train classifier` + `classify`)
and of a logistic-regression probe (standardised vectors, train -> test), retrieval mAP@1/5/10
(test queries, train gallery, L2), and PointNet on points reconstructed from the same INRs;
with the thesis' numbers (ModelNet40, Tab. 5.1/5.2; Manifold40, Tab. 5.4) for reference.

    .venv/bin/python bench/psb_table.py bench-out/inr2vec-tiny
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ENCODERS = {"inr2vec": "inr2vec embedding (thesis encoder, decoder objective)",
            "probegen": "ProbeGen embedding (learned probes, trained on the labels)",
            "raw": "raw flattened weights"}
#: Thesis numbers on ModelNet40 (Tab. 5.1 retrieval, Tab. 5.2 classification, in %).
THESIS = {"inr2vec": (87.0, 81.7, 92.6, 95.1), "pointnet": (88.8, 80.1, 91.7, 94.4)}


def read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def linear_probe(embeddings_path: Path) -> float | None:
    """Logistic regression on standardised vectors, train split -> test split."""
    if not embeddings_path.is_file():
        return None
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from nrtool.artifacts.embeddings import load_embeddings

    embeddings = load_embeddings(embeddings_path)
    splits, labels = np.array(embeddings.splits()), embeddings.labels()
    train, test = splits == "train", splits == "test"
    x = embeddings.vectors.astype(np.float64)
    scaler = StandardScaler().fit(x[train])
    model = LogisticRegression(max_iter=3000).fit(scaler.transform(x[train]), labels[train])
    return float((model.predict(scaler.transform(x[test])) == labels[test]).mean())


def cell(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def seconds(report: dict | None) -> str:
    return "–" if report is None else f"{report['seconds']:.0f} s"


def main(out: Path) -> None:
    fit, fidelity = read(out / "fit.json"), read(out / "fidelity.json")
    print(f"## {out}\n")
    if fidelity is not None:
        per_inr = f"{fit['seconds'] / max(fit.get('fitted', 1), 1):.2f} s/INR" if fit and "seconds" in fit else "–"
        print(f"INR fidelity, test split ({len(fidelity['results'])} {fidelity['field']} INRs, normalised frame): "
              f"Chamfer {cell(fidelity.get('chamfer_mean'), 4)}, F-score@0.01 {cell(fidelity.get('fscore_mean'))} "
              f"(fit {per_inr}); thesis Tab. 5.4, Manifold40 test set, individual INRs: CD 0.3 mm, F-score 0.49 "
              "(its own units and threshold).\n")
    print("| method (test split) | training | MLP classifier acc. | linear probe acc. | mAP@1 | mAP@5 | mAP@10 |")
    print("|---|---|---|---|---|---|---|")
    for name, label in ENCODERS.items():
        classify, retrieve = read(out / f"classify-{name}.json"), read(out / f"retrieve-{name}.json")
        if classify is None and retrieve is None:
            continue
        trained = seconds(read(out / f"{name}.pt.json")) if name != "raw" else "–"
        print(f"| {label} | {trained} | {cell(classify and classify['accuracy'])} | "
              f"{cell(linear_probe(out / f'emb-{name}.h5'))} | "
              + " | ".join(cell(retrieve and retrieve.get(f"map@{k}")) for k in (1, 5, 10)) + " |")
    points = read(out / "classify-points.json")
    if points is not None:
        print(f"| PointNet on points reconstructed from the INRs | – | {cell(points['accuracy'])} | – | – | – | – |")
    print("| *thesis, ModelNet40: inr2vec (Tab. 5.2 / 5.1)* | | *{:.3f}* | | *{:.3f}* | *{:.3f}* | *{:.3f}* |".format(
        *(v / 100 for v in THESIS["inr2vec"])))
    print("| *thesis, ModelNet40: PointNet (Tab. 5.2 / 5.1)* | | *{:.3f}* | | *{:.3f}* | *{:.3f}* | *{:.3f}* |".format(
        *(v / 100 for v in THESIS["pointnet"])))
    print("\nmAP@k here is the share of a query's k nearest training shapes that have its class; the "
          "thesis' grows with k, so it is not that share, and only mAP@1 compares directly.")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
