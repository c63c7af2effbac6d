import json
import time

import pytest

from auralis_ray.tools.benchmark import RESULTS_DIR, BenchmarkRun, PerformanceBenchmark


def test_from_latencies_computes_the_seed_fields():
    latencies = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    b = PerformanceBenchmark.from_latencies(
        "synthesis_latency_cpu", latencies, wall_sec=4.0, cpu_sec=2.0, memory_mb=300.0,
        device_type="cpu", timestamp=1735228800.0, batch_size=4,
    )
    assert (b.mean_latency_ms, b.p50_latency_ms, b.p95_latency_ms, b.p99_latency_ms, b.max_latency_ms) == \
        pytest.approx((50.5, 50.0, 95.0, 99.0, 100.0))
    assert b.operations_per_second == 25.0 and b.cpu_percent == 50.0 and b.samples == 100
    assert b.batch_size == 4 and b.gpu_utilization_percent is None and b.duration_sec == 4.0
    with pytest.raises(ValueError):
        PerformanceBenchmark.from_latencies("x", [], wall_sec=1, cpu_sec=0, memory_mb=0,
                                            device_type="cpu", timestamp=0)


def test_to_json_and_save_round_trip(tmp_path):
    b = PerformanceBenchmark.from_latencies(
        "broadcast/100 clients", [0.001, 0.002], wall_sec=1.0, cpu_sec=0.5, memory_mb=10.0,
        device_type="cpu", timestamp=1735228800.0, concurrent_clients=100, extra={"note": "x"},
    )
    assert json.loads(b.to_json())["concurrent_clients"] == 100
    first, second = b.save(tmp_path / "results"), b.save(tmp_path / "results")
    assert first.name == "broadcast_100_clients-20241226T160000Z.json" and second != first
    assert PerformanceBenchmark.from_json(first.read_text()) == b
    assert RESULTS_DIR.parts[-2:] == ("benchmarks", "results")


def test_benchmark_run_measures_around_the_work():
    with BenchmarkRun() as run:
        for _ in range(10):
            started = time.process_time()
            while time.process_time() - started < 0.01:  # 10 ms of this process's CPU each
                sum(range(10_000))
            run.record(0.001)
    b = run.result("busy", device_type="cpu")
    assert b.samples == 10 and b.memory_mb > 10 and run.wall_sec > 0
    assert run.cpu_sec >= 0.08, "the 100 ms of work, to the clock tick"
    assert b.cpu_percent == pytest.approx(100 * run.cpu_sec / run.wall_sec)
    assert b.operations_per_second == pytest.approx(10 / run.wall_sec)
