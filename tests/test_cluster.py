"""The cluster recipes run as written: ``experiments/cluster/slurm.sbatch`` on a fake two-node
allocation on this machine (Slurm's variables set by hand, ``srun`` and ``scontrol`` stubbed to run
here), a tiny search to the end; and the KubeRay manifest is well-formed YAML of a ``RayJob``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ROOT / "experiments" / "cluster"
BIN = Path(sys.executable).parent

SRUN = """#!/bin/bash
# srun on one machine: drop the options, run the command here
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do
    case "$1" in -w|-N|-n|--nodelist) shift 2 ;; *) shift ;; esac
done
exec "$@"
"""
SCONTROL = """#!/bin/bash
# scontrol show hostnames: the fake allocation's two "nodes"
[ "$1 $2" = "show hostnames" ] && printf 'localhost\\nlocalhost\\n'
"""
CONFIG = """
[search]
max_evals = 6
population_size = 4
tournament_size = 2
[tasks]
names = ["quadratic"]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_pids(sid: int) -> list[int]:
    """The processes of session ``sid``: the script and everything it started (Ray included)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:        # the session id, field 6 of /proc/PID/stat
            pids.append(int(stat.parent.name))
    return pids


@pytest.mark.skipif(shutil.which("ray", path=str(BIN)) is None or not Path("/proc").is_dir(),
                    reason="needs the ray command and /proc")
def test_slurm_script_runs_a_search_on_a_fake_two_node_allocation(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    for name, text in (("srun", SRUN), ("scontrol", SCONTROL)):
        (fake / name).write_text(text)
        (fake / name).chmod(0o755)
    (tmp_path / "search.toml").write_text(CONFIG)
    temp = Path(tempfile.mkdtemp(prefix="evs-", dir="/tmp"))      # short: Ray's socket paths have a limit
    # two Ray nodes on one machine, beside others' Ray: every port chosen free, none left to defaults
    def ports():
        return " ".join(f"--{flag}={free_port()}" for flag in (
            "node-manager-port", "object-manager-port", "dashboard-agent-listen-port",
            "dashboard-agent-grpc-port", "metrics-export-port", "runtime-env-agent-port"))
    env = dict(os.environ, PATH=f"{fake}:{BIN}:{os.environ['PATH']}", PYTHON=sys.executable,
               SLURM_JOB_ID="4242", SLURM_JOB_NODELIST="localhost", SLURM_NNODES="2", SLURM_NTASKS="2",
               SLURM_CPUS_PER_TASK="1", HEAD_IP="127.0.0.1", RAY_PORT=str(free_port()), RAY_WAIT="120",
               RAY_HEAD_ARGS=f"--temp-dir={temp} --include-dashboard=false {ports()}",
               RAY_WORKER_ARGS=f"--node-ip-address=127.0.0.1 {ports()}",
               EVOSEARCH_CACHE=str(tmp_path / "cache"), RAY_ADDRESS="")
    run = tmp_path / "run"
    log = tmp_path / "job.out"         # a file, not a pipe: Ray's processes inherit the script's output
    with log.open("w") as out:
        proc = subprocess.Popen(["bash", str(CLUSTER / "slurm.sbatch"), str(tmp_path / "search.toml"), str(run)],
                                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        proc.wait(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)     # the script's own trap stops its Ray nodes
        proc.wait(timeout=60)
    finally:
        # whatever happened, nothing this test started outlives it (others' Ray on this machine is left alone)
        deadline = time.time() + 20
        while (left := [p for p in session_pids(proc.pid) if p != os.getpid()]) and time.time() < deadline:
            time.sleep(0.5)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(temp, ignore_errors=True)
    out = log.read_text()
    assert proc.returncode == 0, out
    assert "2 Ray nodes up" in out, out
    shown = subprocess.run([str(BIN / "evosearch"), "show", str(run), "--json"], capture_output=True, text=True,
                           check=True)
    assert json.loads(shown.stdout)["evaluations"] >= 6
    assert left == [], f"Ray processes left after the script ended: {left}"


def test_kuberay_manifest_is_a_rayjob():
    yaml = pytest.importorskip("yaml")
    job = yaml.safe_load((CLUSTER / "rayjob.yaml").read_text())
    assert job["apiVersion"].startswith("ray.io/") and job["kind"] == "RayJob"
    assert "evosearch search" in job["spec"]["entrypoint"]
    cluster = job["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["image"] and cluster["workerGroupSpecs"][0]["replicas"] >= 1
