"""``--backend ray``: the same INRs, samples and reconstructions as the local run, on a real local
Ray instance and on a two-node ``ray.cluster_utils.Cluster``; a worker killed mid-task is rerun.

Ray's files go to a short temporary folder (``RAY_TMPDIR``; its socket paths must stay under
107 characters) and ``HOME`` points at an empty folder that must still be empty at the end. Ray's
token authentication (on by default in 2.60) stays on, with the token given in the environment:
otherwise Ray would generate one into ``~/.ray/auth_token``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import assert_clean_failure, run_cli

#: Ray is imported only once the sandbox's environment is set: it reads its token settings once.
RAY_MISSING = "the test extra installs Ray; without it --backend ray is untestable"

FIT = ("--preset", "tiny", "--steps", "40", "--batch", "1", "--seed", "3", "--quiet")
#: Ray sets a task's process title to ``ray::FUNCTION`` while it runs.
FIT_TASK_TITLE = b"ray::_fit_and_keep"


@pytest.fixture(scope="module")
def ray_sandbox():
    """Environment for every Ray process of this module; checks at the end that HOME stayed empty."""
    root = Path(tempfile.mkdtemp(prefix="nrray-"))
    home = root / "home"
    home.mkdir()
    saved = {k: os.environ.get(k) for k in ("RAY_TMPDIR", "HOME", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN",
                                             "RAY_USAGE_STATS_ENABLED")}
    os.environ.update(RAY_TMPDIR=str(root / "t"), HOME=str(home), RAY_AUTH_MODE="token",
                      RAY_AUTH_TOKEN=secrets.token_hex(32), RAY_USAGE_STATS_ENABLED="0")
    (root / "t").mkdir()
    try:
        pytest.importorskip("ray", reason=RAY_MISSING)
        yield root
        assert not any(home.iterdir()), f"Ray wrote into HOME: {sorted(p.name for p in home.iterdir())}"
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def two_nodes(ray_sandbox):
    """A head and a worker node, one CPU each (the suite's worker has two cores)."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


@pytest.fixture(scope="module")
def local_fit(synth_shapes: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "inrs.h5"
    run_cli("fit-inr", synth_shapes, "--out", out, *FIT)
    return out


def _params(path: Path) -> dict[str, np.ndarray]:
    from nrtool.artifacts.inrs import load_inrs

    return {item.name: item.params for item in load_inrs(path)[1]}


def _assert_same_inrs(ray_out: Path, local_out: Path) -> None:
    ours, local = _params(ray_out), _params(local_out)
    assert sorted(ours) == sorted(local)
    from nrtool.artifacts.inrs import load_inrs

    names = [item.name for item in load_inrs(ray_out)[1]]
    assert len(names) == len(set(names)), "an item appears twice"
    for name in local:  # one thread per Ray task, two locally: float rounding only
        np.testing.assert_allclose(ours[name], local[name], rtol=0, atol=1e-4, err_msg=name)


def test_a_local_ray_instance_samples_the_same_ground_truth(ray_sandbox, synth_shapes: Path, tmp_path: Path) -> None:
    # No --address: the backend starts a Ray instance of its own (all this machine's CPUs) and stops it.
    run_cli("sample", synth_shapes, "--out", tmp_path / "local.h5", "--quiet")
    run_cli("sample", synth_shapes, "--out", tmp_path / "ray.h5", "--backend", "ray", "--quiet")
    from nrtool.artifacts.samples import SamplesReader

    local, remote = SamplesReader(tmp_path / "local.h5"), SamplesReader(tmp_path / "ray.h5")
    assert remote.names == local.names
    for row in range(len(local)):
        for a, b in zip(remote.truth(row), local.truth(row)):
            np.testing.assert_array_equal(a, b)
    import ray

    assert not ray.is_initialized()


def test_a_two_node_cluster_fits_the_local_inrs_even_when_a_worker_is_killed(
        two_nodes, synth_shapes: Path, local_fit: Path, tmp_path: Path) -> None:
    killed: list[int] = []
    stop = threading.Event()

    def kill_first_fit_task() -> None:
        while not stop.is_set() and not killed:
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                try:
                    title = (proc / "cmdline").read_bytes()
                except OSError:
                    continue
                if title.startswith(FIT_TASK_TITLE):
                    os.kill(int(proc.name), signal.SIGKILL)
                    killed.append(int(proc.name))
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_first_fit_task, daemon=True)
    killer.start()
    out = tmp_path / "inrs.h5"
    try:
        run_cli("fit-inr", synth_shapes, "--out", out, *FIT, "--backend", "ray", "--address", two_nodes.address)
    finally:
        stop.set()
        killer.join()
    assert killed, "no fit task was seen running"
    _assert_same_inrs(out, local_fit)
    assert not (out.parent / "inrs.h5.parts").exists()


def test_ray_reconstructions_equal_the_local_ones(two_nodes, local_fit: Path, tmp_path: Path) -> None:
    args = ("--points", "2000", "--resolution", "32", "--metrics", "--json", "--device", "cpu")
    local = run_cli("reconstruct", local_fit, "--out", tmp_path / "local", *args)
    remote = run_cli("reconstruct", local_fit, "--out", tmp_path / "ray", *args, "--backend", "ray",
                     "--address", two_nodes.address)
    import json

    local_rows, remote_rows = json.loads(local.stdout)["results"], json.loads(remote.stdout)["results"]
    assert [r["name"] for r in remote_rows] == [r["name"] for r in local_rows]  # in item order
    for a, b in zip(remote_rows, local_rows):
        assert a["size"] == b["size"] and a["chamfer"] == pytest.approx(b["chamfer"], rel=1e-4)
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == sorted(p.name for p in (tmp_path / "local").iterdir())


def test_impossible_ray_requests_fail_in_one_line(two_nodes, synth_shapes: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "inrs.h5"
    result = run_cli("fit-inr", synth_shapes, "--out", out, *FIT, "--backend", "ray", "--address", two_nodes.address,
                     "--gpus-per-task", "1", check=False)
    assert_clean_failure(result, "--gpus-per-task 1: no Ray node has that many GPUs", out)
    assert_clean_failure(run_cli("fit-inr", synth_shapes, "--out", out, *FIT, "--address", "auto", check=False),
                         "address", out)
    assert_clean_failure(run_cli("fit-inr", synth_shapes, "--out", out, *FIT, "--backend", "spark", check=False),
                         "backend", out)
    # Without Ray installed, the message says how to install it.
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    assert_clean_failure(run_cli("fit-inr", synth_shapes, "--out", out, *FIT, "--backend", "ray", check=False),
                         "pip install 'nrtool[ray]'", out)
