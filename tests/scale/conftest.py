"""A local Ray cluster as a user starts one (head + one worker on loopback), and a small catalogue."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import solid

# Ray rewrites 127.0.0.1 and localhost to this machine's network address; another loopback address
# is left as it is, so every connection of the test cluster stays on the loopback interface.
LOOPBACK = "127.0.0.2"
WORDS = ["red", "blue", "green", "black", "white", "pink"]
KINDS = ["dress", "shirt", "jacket", "shoes", "bag", "scarf"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex((LOOPBACK, port)) == 0:
                return
        time.sleep(0.3)
    raise TimeoutError(f"the Ray head did not open port {port}")


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """``ray start --head`` and ``ray start --address`` as two child processes on loopback
    (``--block``, so stopping them stops what they started and nothing else); yields the address."""
    ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'shoplens[scale]'")
    exe = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray")
    if exe is None:
        pytest.skip("the ray command is not on PATH")
    port = _free_port()
    address = f"{LOOPBACK}:{port}"
    temp = tempfile.mkdtemp(prefix="rt-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    common = ["--num-cpus=1", f"--node-ip-address={LOOPBACK}", "--block", "--disable-usage-stats"]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        head = subprocess.Popen(
            [exe, "start", "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}", *common],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        procs.append(head)
        _wait_port(port, head)
        procs.append(subprocess.Popen([exe, "start", f"--address={address}", *common], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        ray.init(address=address, _node_ip_address=LOOPBACK, log_to_driver=False)
        deadline = time.monotonic() + 60
        while ray.cluster_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(ray.nodes()) == 2, "the worker node did not join"
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for p in reversed(procs):
            p.send_signal(signal.SIGINT)  # `ray start --block` stops the processes it started on ^C
        for p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def shop_catalog(tmp_path: Path) -> Path:
    """36 products, each with its own colour of photo and a distinct title (no tied vectors)."""
    rows = []
    for i in range(36):
        word, kind = WORDS[i % 6], KINDS[(i // 6) % 6]
        rgb = (37 * i % 256, 91 * i % 256, (53 * i + 17) % 256)
        solid(tmp_path / "img" / f"{i}.jpg", rgb, (40 + i, 32 + i % 7))
        gender = "Women" if i % 3 else "Men"
        rows.append([f"s{i}", f"{word} {kind} model {i}", f"img/{i}.jpg", str(10 + i), kind, gender])
    path = tmp_path / "catalog.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "title", "image", "price", "category", "gender"])
        w.writerows(rows)
    return path
