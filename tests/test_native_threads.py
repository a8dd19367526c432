"""The pacelight command runs numpy's BLAS with one thread (idle OpenBLAS workers spin and burn CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = (
    "import os, json, pacelight.cli\n"
    "import numpy as np\n"
    "a = np.ones((400, 400)); (a @ a).sum()\n"  # a product large enough for OpenBLAS to start its pool
    "print(json.dumps({'env': os.environ.get('OPENBLAS_NUM_THREADS'),"
    " 'threads': len(os.listdir('/proc/self/task'))}))\n"
)


def _probe(env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def test_cli_import_limits_blas_to_one_thread_before_numpy_loads() -> None:
    got = _probe(_clean_env())
    assert got["env"] == "1"
    assert got["threads"] == 1  # no BLAS worker threads were started by the product


def test_an_explicit_setting_wins() -> None:
    got = _probe({**_clean_env(), "OPENBLAS_NUM_THREADS": "2"})
    assert got["env"] == "2"
    if (os.cpu_count() or 1) >= 2:
        assert got["threads"] >= 2  # the pool follows the environment: the probe above can tell
