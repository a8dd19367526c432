"""Accuracy and speed benchmarks (results in docs/benchmarks.md).

Every benchmark runs with the device's native-thread setting (one BLAS/OpenMP thread, as the
``pacelight`` command sets before numpy loads): ``process_time`` counts all threads, and idle
OpenBLAS workers spinning would otherwise be charged to whatever stage happened to call BLAS.
"""

from pacelight import native_threads

native_threads.apply()
