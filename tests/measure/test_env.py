"""The machine capture: a theoretical fp32 peak where /proc/cpuinfo tells cores, clock and vector width."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakeoff.measure.env import capture, cpu_peak_estimate, physical_cores


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="needs /proc/cpuinfo")
def test_the_peak_estimate_is_cores_times_clock_times_vector_width() -> None:
    for estimate in (cpu_peak_estimate(), capture()["cpu_peak_estimate"]):
        assert estimate is not None and estimate["gflops"] > 0
        cores, ghz, per_cycle = estimate["basis"].split(" x ")
        assert cores == f"{physical_cores()} cores"
        expected = physical_cores() * float(ghz.split()[0]) * int(per_cycle.split()[0])
        assert estimate["gflops"] == pytest.approx(expected, rel=0.01)
    # Each read takes the clock "as reported", and where the CPU scales its frequency with load, two reads
    # a moment apart differ: capture's estimate is checked on its own, not for equality with the first.
