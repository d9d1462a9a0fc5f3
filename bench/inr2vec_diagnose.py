"""Where does inr2vec lose the class information that is in the INR weights? (issue 14)

Reads an ``inrs`` artifact with ``train``/``test`` splits and prints, for each representation, the
test accuracy of a logistic-regression probe (standardised features, trained on the train split),
retrieval mAP@1/@5 (L2 on standardised features, test queries against the train gallery) and the
effective rank of the train vectors (exp of the entropy of the normalised singular values):

* the raw weights: all layers, the hidden-to-hidden layers only (what the thesis' encoder reads),
  the input layer, the output layer;
* every inr2vec checkpoint given with ``--model``;
* with ``--curve EPOCHS``: an encoder trained here (the ``tiny`` preset, overridden by
  ``--rows``/``--widths``/``--lr``/``--weight-decay``/``--batch``/``--queries``), probed before training and every ``--every`` epochs,
  with its validation Chamfer, to see whether training adds class information or removes it.

    .venv/bin/python bench/inr2vec_diagnose.py bench-out/psb/inrs.h5 --model inr2vec.pt
    .venv/bin/python bench/inr2vec_diagnose.py bench-out/psb/inrs.h5 --curve 40 --rows all --lr 1e-3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from nrtool.artifacts.inrs import load_inrs
from nrtool.inr.siren import unflatten


@dataclasses.dataclass
class Split:
    labels: np.ndarray
    train: np.ndarray
    test: np.ndarray


def probe_accuracy(x: np.ndarray, split: Split) -> float:
    scaler = StandardScaler().fit(x[split.train])
    model = LogisticRegression(max_iter=3000).fit(scaler.transform(x[split.train]), split.labels[split.train])
    return float((model.predict(scaler.transform(x[split.test])) == split.labels[split.test]).mean())


def retrieval_map(x: np.ndarray, split: Split, k: int) -> float:
    x = StandardScaler().fit(x[split.train]).transform(x)
    distances = torch.cdist(torch.as_tensor(x[split.test]), torch.as_tensor(x[split.train]))
    neighbours = distances.topk(k, largest=False).indices.numpy()
    return float((split.labels[split.train][neighbours] == split.labels[split.test][:, None]).mean())


def effective_rank(x: np.ndarray) -> float:
    singular = np.linalg.svd(x - x.mean(0), compute_uv=False)
    p = singular / singular.sum()
    return float(np.exp(-(p * np.log(p + 1e-12)).sum()))


def scores(x: np.ndarray, split: Split) -> dict[str, float]:
    x = x.astype(np.float64)
    return {"dim": x.shape[1], "probe": probe_accuracy(x, split), "map@1": retrieval_map(x, split, 1),
            "map@5": retrieval_map(x, split, 5), "eff_rank": effective_rank(x[split.train])}


def show(name: str, record: dict[str, float]) -> None:
    print(json.dumps({"what": name, **{k: round(v, 3) if isinstance(v, float) else v for k, v in record.items()}}),
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inrs")
    parser.add_argument("--model", action="append", default=[], help="An inr2vec checkpoint to probe (repeatable).")
    parser.add_argument("--curve", type=int, default=0, help="Train an encoder here for this many epochs.")
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--rows", default="hidden")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--weight-decay", type=float, default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--queries", type=int, default=None)
    parser.add_argument("--widths", default=None,
                        help="Encoder widths, comma-separated (the last is the embedding size; tiny 128,128,256,256).")
    args = parser.parse_args()

    header, items = load_inrs(args.inrs)
    params = torch.from_numpy(np.stack([item.params for item in items]))
    classes = sorted({item.class_name for item in items if item.class_name})
    splits = np.array([item.split for item in items])
    split = Split(np.array([classes.index(item.class_name) for item in items]),
                  np.where(splits == "train")[0], np.where(splits == "test")[0])
    print(f"{args.inrs}: {len(split.train)} train / {len(split.test)} test INRs, {len(classes)} classes", flush=True)

    layers = unflatten(params, header.spec)

    def flat(chosen: list[tuple[torch.Tensor, torch.Tensor]]) -> np.ndarray:
        return torch.cat([torch.cat([w.flatten(1), b], 1) for w, b in chosen], 1).numpy()

    for name, x in (("raw weights, all layers", params.numpy()), ("raw weights, hidden layers", flat(layers[1:-1])),
                    ("raw weights, input layer", flat(layers[:1])), ("raw weights, output layer", flat(layers[-1:]))):
        show(name, scores(x, split))

    from nrtool.inr2vec.train import load_model

    for path in args.model:
        model, _ = load_model(path)
        with torch.no_grad():
            show(f"inr2vec {path} (eval BN)", scores(model.encode(params).numpy(), split))
            model.train()
            show(f"inr2vec {path} (batch BN)", scores(model.encode(params).numpy(), split))

    if args.curve:
        curve(args, header, items, params, split)


def curve(args: argparse.Namespace, header, items, params: torch.Tensor, split: Split) -> None:
    from nrtool.inr2vec.config import inr2vec_preset, train_preset
    from nrtool.inr2vec.models import Inr2vec
    from nrtool.inr2vec.train import Inr2vecTrainer, split_validation

    config = dataclasses.replace(inr2vec_preset("tiny"), rows=args.rows)
    if args.widths:
        config = dataclasses.replace(config, encoder_widths=tuple(int(w) for w in args.widths.split(",")))
    overrides = {k: v for k, v in (("lr", args.lr), ("weight_decay", args.weight_decay), ("batch", args.batch),
                                   ("queries", args.queries)) if v is not None}
    settings = dataclasses.replace(train_preset("tiny"), **overrides)
    train_rows, val_rows = split_validation(items, settings.val_items, settings.seed)
    torch.manual_seed(settings.seed)
    model = Inr2vec(config, header.spec)
    trainer = Inr2vecTrainer(model, header, params[train_rows], params[val_rows], settings)

    def measure(epoch: int, loss: float) -> None:
        model.eval()
        with torch.no_grad():
            embeddings = model.encode(params).numpy()
        show(f"inr2vec rows={args.rows} widths={','.join(map(str, config.encoder_widths))} {overrides} epoch {epoch}",
             {"train_loss": loss, "val_chamfer": trainer.validate(epoch)["val_chamfer"], **scores(embeddings, split)})

    measure(0, float("nan"))
    started = time.perf_counter()
    for epoch in range(1, args.curve + 1):
        model.train()
        loss = trainer.train_epoch(epoch, lambda *_: None, lambda: False)["train_loss"]
        if epoch % args.every == 0 or epoch == args.curve:
            measure(epoch, loss)
    print(f"trained {args.curve} epochs in {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
