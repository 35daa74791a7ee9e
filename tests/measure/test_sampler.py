"""The resource sampler on real processes: a child that burns CPU and memory, an idle self, a vanished pid."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from bakeoff.measure.sampler import ResourceSampler, ResourceUsage

MB = 1024 * 1024

# Touches every page of 200 MB (a bare bytearray(n) could stay unmapped), burns CPU for 0.6 s, says so
# with the share of a core it got meanwhile, then idles until killed.
BURNER = """
import sys, time
buf = bytearray(200 * 1024 * 1024)
buf[::4096] = b"\\x01" * (len(buf) // 4096)
start, cpu = time.perf_counter(), time.process_time()
end = start + 0.6
while time.perf_counter() < end:
    pass
print("done", (time.process_time() - cpu) / (time.perf_counter() - start), flush=True)
time.sleep(30)
"""


def burned(burner: subprocess.Popen[str]) -> float:
    """Waits for the burner's spin; the share of a core it got (about 1 on a quiet machine, less where
    other programs' processes took turns on its core: the tests' `serial` mark cannot keep those away)."""
    assert burner.stdout is not None
    done, share = burner.stdout.readline().split()
    assert done == "done"
    return float(share)


def busy_peak(share: float) -> float:
    """What the sampler's peak CPU % must beat for a spin that got `share` of a core: half of what it
    got (psutil counts CPU time in 10 ms ticks, so a 50 ms sample is coarse)."""
    return 50 * min(1.0, share)


def nvml_works() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
    except Exception:
        return False
    return True


@pytest.fixture
def burner() -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", BURNER], stdout=subprocess.PIPE, text=True)
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.serial  # a spinning child must get its core: a test running beside it takes that away
def test_samples_a_busy_child(burner: subprocess.Popen[str]) -> None:
    with ResourceSampler(burner.pid, interval=0.05, gpu=False) as sampler:
        share = burned(burner)
    usage = sampler.usage
    assert usage.samples >= 5
    assert usage.cpu_percent_peak > busy_peak(share), (usage.cpu_percent_peak, share)
    assert usage.rss_peak_bytes > 150 * MB
    assert 0 < usage.rss_mean_bytes <= usage.rss_peak_bytes
    assert usage.cores == psutil.cpu_count()
    assert usage.cpu_util_share == pytest.approx(usage.cpu_percent_mean / (100 * usage.cores))


@pytest.mark.serial
def test_children_are_summed_into_the_parent(burner: subprocess.Popen[str]) -> None:
    with ResourceSampler(interval=0.05, gpu=False) as sampler:
        share = burned(burner)
    assert sampler.usage.rss_peak_bytes > 150 * MB
    assert sampler.usage.cpu_percent_peak > busy_peak(share), (sampler.usage.cpu_percent_peak, share)


def test_idle_self_uses_little_cpu() -> None:
    # 20 intervals for 5 samples: on a loaded machine the sampler's thread wakes late (8 intervals, 0.4 s,
    # left only 80 ms a sample), and a late wake-up is the scheduler's, not the sampler's.
    with ResourceSampler(interval=0.05, include_children=False, gpu=False) as sampler:
        time.sleep(1.0)
    usage = sampler.usage
    assert usage.samples >= 5
    assert usage.cpu_percent_mean < 25
    assert usage.rss_peak_bytes > 0


def test_a_pid_that_exits_at_once_does_not_raise() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    with ResourceSampler(proc.pid, gpu=False) as sampler:
        time.sleep(0.1)
    assert sampler.usage.samples == 0 and sampler.usage.cpu_percent_mean == 0.0
    assert "exited" in sampler.usage.note


def test_a_process_exiting_mid_sampling_stops_it_quietly() -> None:
    # The block waits for the exit instead of guessing it (a fixed 0.5 s was not always enough for an
    # interpreter to start and sleep 0.15 s on a loaded machine), then goes on long enough that a sampler
    # which kept sampling would take 25 samples more.
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.15)"])
    try:
        with ResourceSampler(proc.pid, interval=0.02, gpu=False) as sampler:
            proc.wait(timeout=60)
            lived = time.perf_counter() - started
            time.sleep(0.5)
    finally:
        proc.wait()
    usage = sampler.usage
    assert 1 <= usage.samples <= lived / 0.02 + 2, (usage.samples, lived)
    assert usage.rss_peak_bytes > 0
    assert "exited" in usage.note


def test_a_short_block_still_gets_one_sample() -> None:
    with ResourceSampler(interval=10.0, gpu=False) as sampler:
        pass
    assert sampler.usage.samples == 1


def test_exit_is_prompt_with_a_long_interval() -> None:
    start = time.perf_counter()
    with ResourceSampler(interval=5.0, gpu=False):
        time.sleep(0.05)
    assert time.perf_counter() - start < 2.5  # half the interval: a loaded machine may add a second


@pytest.mark.skipif(nvml_works(), reason="NVML works here: a GPU machine")
def test_without_nvml_gpu_sampling_is_off() -> None:
    with ResourceSampler() as sampler:
        time.sleep(0.1)
    usage = sampler.usage
    assert usage.gpu is False
    assert (usage.gpu_util_mean, usage.gpu_util_peak, usage.gpu_mem_peak_bytes) == (None, None, None)
    assert usage.note.startswith("GPU sampling off")


def test_gpu_false_never_touches_nvml() -> None:
    with ResourceSampler(gpu=False) as sampler:
        pass
    assert sampler.usage.gpu is False and sampler.usage.note == ""


@pytest.mark.gpu
@pytest.mark.skipif(not nvml_works(), reason="needs NVML and an NVIDIA GPU")
def test_gpu_fields_are_filled_with_nvml() -> None:
    with ResourceSampler(interval=0.05) as sampler:
        time.sleep(0.3)
    usage = sampler.usage
    assert usage.gpu is True
    assert usage.gpu_util_mean is not None and usage.gpu_util_peak is not None
    assert 0 <= usage.gpu_util_mean <= usage.gpu_util_peak <= 100
    assert usage.gpu_mem_peak_bytes is not None and usage.gpu_mem_peak_bytes >= 0
    assert usage.gpu_mem_scope in ("process", "device")


def test_to_dict_carries_the_share() -> None:
    usage = ResourceUsage(
        cpu_percent_mean=100.0,
        cpu_percent_peak=150.0,
        rss_peak_bytes=10,
        rss_mean_bytes=5.0,
        samples=2,
        gpu=False,
        gpu_util_mean=None,
        gpu_util_peak=None,
        gpu_mem_peak_bytes=None,
        cores=4,
    )
    d = usage.to_dict()
    assert d["cpu_util_share"] == 0.25
    assert d["gpu_mem_peak_bytes"] is None and d["samples"] == 2


def test_usage_before_exit_is_an_error() -> None:
    with ResourceSampler(gpu=False) as sampler, pytest.raises(RuntimeError):
        _ = sampler.usage


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ResourceSampler(interval=0)
