"""``nrtool fuse-bn``: a NetSpace zoo network with its batch norms folded into the convolutions."""

from __future__ import annotations

from pathlib import Path

import typer

from nrtool.cli.app import app
from nrtool.cli.common import OPTIONS, argv, check_outputs, print_json


@app.command("fuse-bn")
def fuse_bn_cmd(
    net: Path = typer.Argument(..., help="A network checkpoint (`nrtool netspace zoo`, or `nrtool.netspace.architectures.save_net`)."),
    out: Path = typer.Option(..., "--out", "-o", help="The fused checkpoint to write (plain PyTorch: torch.load, then build(spec))."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
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
