"""``nrtool fuse-bn`` and ``nrtool netspace zoo|train|encode|decode|interpolate|optimize`` (thesis Chapter 4)."""

from __future__ import annotations

from pathlib import Path
from statistics import fmean
from typing import Optional

import typer

from nrtool.cli.app import app, netspace_app
from nrtool.cli.common import (
    DEVICE_OPTION,
    FORCE_OPTION,
    OPTIONS,
    RESTART_OPTION,
    argv,
    check_device,
    check_outputs,
    print_json,
    print_training,
    progress,
)
from nrtool.config import override_options
from nrtool.netspace.config import NetSpaceConfig, NetSpaceTraining, ZooSettings

MODEL_OPTION = typer.Option(..., "--model", "-m", help="NetSpace checkpoint from `nrtool netspace train`.")
JSON_OPTION = typer.Option(False, "--json", help="Print a JSON summary.")


@app.command("fuse-bn")
def fuse_bn_cmd(
    net: Path = typer.Argument(..., help="A network checkpoint (`nrtool netspace decode`, or `nrtool.netspace.architectures.save_net`)."),
    out: Path = typer.Option(..., "--out", "-o", help="The fused checkpoint to write (plain PyTorch: torch.load, then build(spec))."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Fold every batch norm into its convolution (thesis App. B.5): the same outputs in eval mode,
    fewer parameters, no running statistics. Checks the outputs on random inputs before writing.

    Example: `nrtool fuse-bn resnet8.pt --out resnet8-fused.pt`
    """
    check_outputs(files=[out])
    from nrtool.netspace.fusion import fuse_checkpoint

    summary = fuse_checkpoint(net, out, argv())
    if json_out:
        print_json(summary)
    elif not OPTIONS.quiet:
        print(f"{out}: {summary['parameters']:,} parameters (from {summary['parameters_before']:,}); "
              f"outputs within {summary['max_difference']:.2e} of the unfused network's")


@netspace_app.command("zoo")
@override_options(ZooSettings, ["architectures", "count", "val_nets", "test_nets", "min_epochs", "max_epochs",
                                "optimizer", "lr", "batch", "seed"], flags={"architectures": "--architecture"})
def zoo_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="The zoo artifact to write (HDF5)."),
    preset: str = typer.Option("tiny", help="tiny | small | paper (thesis: 132 ResNet8s, Adam 1e-4, 1-600 epochs)."),
    images: str = typer.Option("digits", help="digits (scikit-learn's bundled 8x8 digits) or an ImageFolder "
                               "(ROOT/<class>/*.png)."),
    size: int = typer.Option(32, help="Image side the networks see (the architectures are built for 32)."),
    from_inrs: Optional[Path] = typer.Option(None, "--from-inrs", help="Make the zoo of an `inrs` artifact's INRs "
                                             "instead (the SDF experiment, Sec. 4.4.3); --val-nets of its training "
                                             "INRs go to validation."),
    device: str = DEVICE_OPTION,
    json_out: bool = JSON_OPTION,
    overrides: dict = None,
) -> None:
    """Train a zoo: networks from their own random initialisations, each for a number of epochs
    drawn for it, so that accuracies spread (thesis App. B.3). An interrupted run resumes.
    With --from-inrs, the INRs of an `inrs` artifact (`nrtool fit-inr`) are the zoo.

    Example: `nrtool netspace zoo --out zoo.h5 --architecture lenetlike --count 160`
    """
    from nrtool.netspace.config import zoo_preset
    from nrtool.netspace.data import ImageSource

    settings = zoo_preset(preset, **overrides)
    check_device(device)
    check_outputs(files=[out])
    if from_inrs is not None:
        from nrtool.netspace.sdf import write_inr_zoo

        zoo = write_inr_zoo(from_inrs, out, settings.val_nets, settings.seed, argv())
        counts = {s: len(zoo.of_split(s)) for s in ("train", "val", "test")}
        if json_out:
            print_json({"out": str(out), "nets": len(zoo.nets), **counts, "parameters": len(zoo.nets[0].weights)})
        elif not OPTIONS.quiet:
            print(f"{out}: {len(zoo.nets)} INRs of {len(zoo.nets[0].weights):,} weights "
                  f"({counts['train']} train / {counts['val']} val / {counts['test']} test)")
        return
    from nrtool.netspace.zoo import train_zoo

    report = train_zoo(out, settings, ImageSource(images, size), device, progress(), argv())
    if json_out:
        print_json(report.__dict__)
    elif not OPTIONS.quiet:
        parts = [f"{a} ({report.parameters[a]:,} weights) test accuracy {s['min']:.1%}-{s['max']:.1%}, "
                 f"mean {s['mean']:.1%}" for a, s in report.accuracy.items()]
        resumed = f" ({report.resumed} resumed)" if report.resumed else ""
        print(f"{out}: {report.nets} networks{resumed} in {report.seconds:.0f} s; " + "; ".join(parts))


@netspace_app.command("train")
@override_options(NetSpaceConfig, ["embedding", "prep_width", "channels", "meta_batch", "image_batch", "lr"],
                  into="network")
@override_options(NetSpaceTraining, ["epochs", "steps", "val_every", "time_limit", "seed"])
def train_cmd(
    zoo: Path = typer.Argument(..., help="A zoo artifact (`nrtool netspace zoo`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint to write (training curves go to the same name .png)."),
    preset: str = typer.Option("tiny", help="tiny | small | paper (thesis: embedding 4096, meta-batch 8, Adam 1e-4)."),
    teacher: Optional[Path] = typer.Option(None, help="Several architectures: the network to distil from (Eq. 4.3; "
                                           "the thesis uses a ResNet56). Default: the zoo's best training network."),
    device: str = DEVICE_OPTION,
    restart: bool = RESTART_OPTION,
    json_out: bool = JSON_OPTION,
    overrides: dict = None,
    network: dict = None,
) -> None:
    """Learn the space of a zoo's networks: encoder + decoder trained so that decoded networks
    behave like their targets (distillation, T = 4). Keeps the epoch whose decoded validation
    networks' accuracy is closest to their targets'. A zoo of several architectures adds the
    ClassId head and the interpolation loss (Eq. 4.3-4.12) and keeps the epoch of the best decoded
    accuracy. An interrupted run resumes.

    Example: `nrtool netspace train zoo.h5 --out netspace.pt --epochs 10`
    """
    from nrtool.netspace.config import netspace_preset

    config = netspace_preset(preset, **network)
    training = NetSpaceTraining().with_overrides(**overrides)
    check_device(device)
    from nrtool.netspace.train import train_netspace

    report = train_netspace(zoo, out, config, training, device, progress(), restart=restart, teacher_path=teacher)
    best = report.best
    if "val_mse" in best:  # a zoo of INRs: the fields' error, not accuracies
        text = f"{report.details['train_nets']} training INRs; validation field MSE {best['val_mse']:.5f}"
    else:
        text = (f"{report.details['train_nets']} training networks; validation gap {best.get('val_gap', float('nan')):.1%} "
                f"(accuracy points), correlation {best.get('val_corr', float('nan')):.2f}")
    if "val_class_accuracy" in best:
        text += (f", decoded accuracy {best['val_decoded_accuracy']:.1%}, ClassId accuracy "
                 f"{best['val_class_accuracy']:.1%}")
    print_training(report, json_out, text)


@netspace_app.command("encode")
def encode_cmd(
    nets: list[Path] = typer.Argument(..., help="Zoo artifacts and/or network checkpoints (.pt)."),
    model: Path = MODEL_OPTION,
    out: Path = typer.Option(..., "--out", "-o", help="embeddings artifact to write."),
    split: Optional[str] = typer.Option(None, help="Only the zoo networks of this split (train / val / test)."),
    names: Optional[list[str]] = typer.Option(None, "--name", help="Only these zoo networks (repeatable)."),
    device: str = DEVICE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Embed trained networks into the NetSpace (one vector each, the same size for any network).

    Example: `nrtool netspace encode zoo.h5 --model netspace.pt --split test --out embeddings.h5`
    """
    check_device(device)
    check_outputs(files=[out])
    from nrtool.netspace.commands import encode_files

    summary = encode_files(nets, model, out, split, names or [], device, argv())
    if json_out:
        print_json(summary)
    elif not OPTIONS.quiet:
        print(f"{out}: {summary['count']} embeddings of size {summary['dim']}")


@netspace_app.command("decode")
def decode_cmd(
    embeddings: Path = typer.Argument(..., help="An embeddings artifact (`netspace encode`, `netspace optimize`) or a .npy."),
    model: Path = MODEL_OPTION,
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write one network checkpoint per embedding into."),
    names: Optional[list[str]] = typer.Option(None, "--name", help="Only these items (repeatable)."),
    force: bool = FORCE_OPTION,
    device: str = DEVICE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Decode embeddings into networks: checkpoints that plain PyTorch loads (torch.load, then
    `build(spec)` + `fuse_bn`), each with its test accuracy.

    Example: `nrtool netspace decode embeddings.h5 --model netspace.pt --out decoded/`
    """
    check_device(device)
    from nrtool.netspace.commands import decode_file

    results = decode_file(embeddings, model, out, names or [], force, device, argv())
    if json_out:
        print_json([r.__dict__ for r in results])
    elif not OPTIONS.quiet:
        for r in results:
            if r.test_accuracy is None:
                print(f"{r.path}: {r.architecture}")
                continue
            target = f" (target {r.target_accuracy:.1%})" if r.target_accuracy is not None else ""
            print(f"{r.path}: {r.architecture}, test accuracy {r.test_accuracy:.1%}{target}")
        if any(r.test_accuracy is None for r in results):
            print(f"{out}/inrs.h5: the decoded INRs (`nrtool reconstruct {out}/inrs.h5 --metrics`)")


@netspace_app.command("interpolate")
def interpolate_cmd(
    zoo: Path = typer.Argument(..., help="The zoo the two networks are in."),
    model: Path = MODEL_OPTION,
    out: Path = typer.Option(..., "--out", "-o", help="PNG: accuracy along both lines (INRs: their shapes)."),
    a: Optional[str] = typer.Option(None, "--a", help="First network (default: the test network of lowest "
                                    "accuracy; INRs: the first test INR)."),
    b: Optional[str] = typer.Option(None, "--b", help="Second network (default: the test network of highest "
                                    "accuracy; INRs: the second test INR)."),
    steps: int = typer.Option(11, help="Points on each line, ends included."),
    device: str = DEVICE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Test accuracy along the line between two networks' embeddings (decoded) and, beside it,
    along the straight line between their weights (thesis Sec. 4.4.2). For a NetSpace of INRs, the
    shapes along both lines and their Chamfer to A's and B's shapes (Sec. 4.4.3, Fig. 4.5).

    Example: `nrtool netspace interpolate zoo.h5 --model netspace.pt --out interpolation.png`
    """
    check_device(device)
    check_outputs(files=[out])
    from nrtool.netspace.commands import interpolate_file
    from nrtool.netspace.sdf import ShapeInterpolation

    result = interpolate_file(zoo, model, out, a, b, steps, device, progress())
    if json_out:
        print_json(result.to_dict() if isinstance(result, ShapeInterpolation) else result.__dict__)
    elif OPTIONS.quiet:
        pass
    elif isinstance(result, ShapeInterpolation):
        def line(rows: list) -> str:
            return " ".join("-" if r["chamfer_a"] is None else f"{r['chamfer_a']:.3f}/{r['chamfer_b']:.3f}" for r in rows)

        print(f"{out}: {result.a} -> {result.b}, Chamfer to A/B along the embeddings {line(result.embedding)}; "
              f"along the weights {line(result.weights)} (- : no surface)")
    else:
        text = " ".join(f"{v:.0%}" for v in result.embedding_accuracy)
        if len(set(result.architectures)) > 1:
            text += " (decoded as " + " ".join(result.architectures) + ")"
        if result.weight_accuracy:
            text += "; along the weights " + " ".join(f"{v:.0%}" for v in result.weight_accuracy)
        print(f"{out}: {result.a} -> {result.b}: along the embeddings {text}")


@netspace_app.command("optimize")
def optimize_cmd(
    zoo: Path = typer.Argument(..., help="The zoo the network is in."),
    model: Path = MODEL_OPTION,
    net: Optional[list[str]] = typer.Option(None, "--net", help="The network to start from (default: the test network "
                                            "of median accuracy). A space of INRs takes several (default: every test INR)."),
    out: Path = typer.Option(..., "--out", "-o", help="The optimised network's checkpoint (its embedding goes to the "
                             "same name .h5); for INRs an `inrs` artifact (their embeddings go to OUT-embeddings.h5)."),
    steps: int = typer.Option(200, help="Optimisation steps."),
    lr: float = typer.Option(1e-2, help="Adam learning rate on the embedding (the thesis: 1e-4 on GPU for longer)."),
    teacher: Optional[Path] = typer.Option(None, help="A stronger network checkpoint to distil from (the thesis: a "
                                           "ResNet56); without one, cross-entropy on the training labels alone."),
    alpha: float = typer.Option(0.9, help="Weight of the teacher's distillation (1 - alpha: cross-entropy)."),
    seed: int = typer.Option(0, help="Seed of the image batches (of the points, for INRs)."),
    device: str = DEVICE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Latent-space optimisation: freeze NetSpace, start from a network's embedding and move the
    embedding alone to raise the decoded network's accuracy (thesis Sec. 4.4.7, Tab. 4.1). In a
    space of INRs the task is the INR's own field (Eq. 4.2): decoded INRs come closer to their shapes.

    Example: `nrtool netspace optimize zoo.h5 --model netspace.pt --net lenetlike-007 --out better.pt`
    """
    from nrtool.netspace.commands import optimize_file, optimized_embeddings_path

    check_device(device)
    check_outputs(files=[out, optimized_embeddings_path(out, True), optimized_embeddings_path(out, False)])
    from nrtool.netspace.sdf import FieldOptimisation

    result = optimize_file(zoo, model, net or [], out, steps, lr, teacher, alpha, seed, device, progress(), argv())
    if isinstance(result, FieldOptimisation):
        if json_out:
            print_json(result.to_dict())
        elif not OPTIONS.quiet:
            print(f"{out}: {len(result.names)} INRs, field MSE to their own INRs {fmean(result.initial_mse):.5f} "
                  f"decoded, {fmean(result.optimized_mse):.5f} after optimising "
                  f"(`nrtool reconstruct {out} --metrics` scores their shapes)")
    elif json_out:
        print_json({k: v for k, v in result.__dict__.items() if k != "embedding"})
    elif not OPTIONS.quiet:
        print(f"{out}: {result.name} test accuracy {result.target_accuracy:.1%} (target), "
              f"{result.initial_accuracy:.1%} decoded, {result.optimized_accuracy:.1%} after optimising "
              f"(kept step {result.best_step}/{result.steps})")
