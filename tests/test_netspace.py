"""NetSpace foundations (issue 17, in progress): BN fusion, parameter counts of Tab. B.1, PRep round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import assert_clean_failure, run_cli


def _trained_looking(depth: int, seed: int = 0) -> torch.nn.Module:
    """A ResNet whose BN layers hold non-trivial statistics and affine values (fusion must use them)."""
    from nrtool.netspace.architectures import CifarResNet

    torch.manual_seed(seed)
    model = CifarResNet(depth)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.mark.parametrize("depth, fused_count", [(8, 77_706), (32, 465_674), (56, 853_642)])
def test_fused_resnets_have_the_thesis_sizes_and_the_same_outputs(depth: int, fused_count: int) -> None:
    from nrtool.netspace.architectures import parameter_count
    from nrtool.netspace.fusion import fuse_bn

    model = _trained_looking(depth)
    fused = fuse_bn(model)
    assert parameter_count(fused) == fused_count  # thesis Tab. B.1
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert float((model(x) - fused(x)).abs().max()) < 1e-5


@pytest.mark.parametrize("name, count", [("lenetlike", 62_006), ("vanillacnn", 68_818)])
def test_small_architectures_have_the_thesis_sizes(name: str, count: int) -> None:
    from nrtool.netspace.architectures import build, parameter_count
    from nrtool.netspace.fusion import fuse_bn
    from nrtool.netspace.prep import forward_with, to_prep

    model = build({"architecture": name}).eval()
    assert parameter_count(model) == count  # thesis Tab. B.1 (no BN: fusing changes nothing)
    assert parameter_count(fuse_bn(model)) == count
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert model(x).shape == (3, 10)
        assert torch.equal(forward_with(model, to_prep(model, 128), x), model(x))


def test_prep_round_trip_is_exact_and_runs_the_network() -> None:
    from nrtool.netspace.fusion import fuse_bn
    from nrtool.netspace.prep import forward_with, from_prep, prep_shape, to_prep

    fused = fuse_bn(_trained_looking(8))
    for width in (64, 256):
        prep = to_prep(fused, width)
        _, height, w = prep.shape
        assert w == width and height % 4 == 0 and prep_shape(77_706, width) == tuple(prep.shape)
        assert height * width - 77_706 < 4 * width  # padding: less than four rows
        values = from_prep(prep, fused)
        for name, p in fused.named_parameters():
            assert torch.equal(values[name], p.detach())
        assert float(prep.reshape(-1)[77_706:].abs().sum()) == 0.0
        x = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            assert torch.equal(forward_with(fused, prep, x), fused(x))
    # Gradients reach the PRep (what NetSpace's decoder needs).
    prep = to_prep(fused, 64).requires_grad_(True)
    forward_with(fused, prep, torch.randn(2, 3, 32, 32)).sum().backward()
    assert prep.grad is not None and float(prep.grad.abs().sum()) > 0
    with pytest.raises(Exception, match="multiple of 8"):
        prep_shape(100, 12)


def test_fuse_bn_command_writes_a_plain_checkpoint_and_refuses_bad_input(tmp_path: Path) -> None:
    from nrtool.netspace.architectures import load_net, save_net

    model = _trained_looking(8)
    save_net(tmp_path / "net.pt", model, model.spec, {"accuracy": 0.5})
    summary = json.loads(run_cli("fuse-bn", tmp_path / "net.pt", "--out", tmp_path / "fused.pt", "--json").stdout)
    assert summary["parameters"] == 77_706 and summary["parameters_before"] == 78_042
    assert summary["max_difference"] < 1e-5
    fused, checkpoint = load_net(tmp_path / "fused.pt")
    assert checkpoint["fused"] and checkpoint["accuracy"] == 0.5
    raw = torch.load(tmp_path / "fused.pt", weights_only=True)  # plain PyTorch reads it
    assert set(raw["state_dict"]) == set(fused.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert float((fused(x) - model(x)).abs().max()) < 1e-5
    assert_clean_failure(run_cli("fuse-bn", tmp_path / "fused.pt", "--out", tmp_path / "again.pt", check=False),
                         "fused already", tmp_path / "again.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert_clean_failure(run_cli("fuse-bn", tmp_path / "junk.pt", "--out", tmp_path / "x.pt", check=False),
                         "junk.pt", tmp_path / "x.pt")
