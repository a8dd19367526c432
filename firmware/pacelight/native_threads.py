"""One native thread per process for numpy's BLAS and OpenMP pools.

The pipeline is single-threaded by design (one analysis thread per call, frame by frame): its
matrix products are tiny (a 10 ms frame's 257-bin spectrum times a 40-band filterbank), so BLAS
worker threads cannot speed them up, but OpenBLAS's idle workers spin between calls. Measured on
the edge runtime (``benchmarks/edge_realtime.py``, 30 s call at speed 1, AMD EPYC, 2 cores): 3.78 s of
CPU with the default pool (one worker per core) vs 1.37 s with one thread, the same output. On a
4-core Pi the default pool would be larger still.

The pools read these variables once, when numpy first loads, so :func:`apply` must run before the
first ``import numpy`` of the process: the ``pacelight`` command calls it at start-up (cli.py).
This module imports nothing heavy. Values already set in the environment win (``setdefault``).
"""

from __future__ import annotations

import os

THREAD_ENV: dict[str, str] = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def apply() -> None:
    """Set the one-thread defaults unless the environment already chose (call before numpy loads)."""
    for key, value in THREAD_ENV.items():
        os.environ.setdefault(key, value)
