"""Tests for benchmarks/mixed_precision.py: the same start under both policies, the verdicts, the table,
and a run with tiny flags."""

import json

import numpy as np
import pytest

from keras_avae.models import networks

from conftest import load_benchmark


bench = load_benchmark("mixed_precision")


def test_both_policies_start_from_the_same_weights():
    reference = bench.build_model("mlp", "vae", "float32")
    mixed = bench.build_model("mlp", "vae", "mixed_bfloat16")
    assert networks.dtype_policy(reference.encoder) == "float32"
    assert networks.dtype_policy(mixed.encoder) == "mixed_bfloat16"
    for a, b in zip(reference.get_weights(), mixed.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def _speed(model, policy, ratio, ms=100.0):
    return {"model": model, "policy": policy, "step_ms": ms, "vs_float32": ratio, "gflops": 50.0, "peak_fraction": 0.3}


def _result(model, policy, elbo, digit, color):
    return {"model": model, "policy": policy, "test_elbo": elbo, "probe_accuracy": {"digit": digit, "color": color}}


def test_faster_and_agreeing_are_judged_against_float32():
    speed = [_speed("vae", "float32", 1.0), _speed("vae", "mixed_bfloat16", 0.6, 60.0),
             _speed("avae", "float32", 1.0), _speed("avae", "mixed_bfloat16", 0.95)]
    results = [_result("vae", "float32", -100.0, 0.90, 0.99), _result("vae", "mixed_bfloat16", -100.5, 0.89, 0.99),
               _result("avae", "float32", -100.0, 0.90, 0.99), _result("avae", "mixed_bfloat16", -102.0, 0.90, 0.95)]
    lines = bench.verdicts(speed, results)
    assert lines["vae"]["faster"] and lines["vae"]["agree"]
    assert lines["vae"]["elbo_gap"] == pytest.approx(0.005) and lines["vae"]["accuracy_gap"] == pytest.approx(0.01)
    assert not lines["avae"]["faster"] and not lines["avae"]["agree"]  # 2% on the ELBO, 4 points on colour
    markdown = bench.table(speed, results)
    assert "| VAE | mixed_bfloat16 | 60.0 | 0.60 | 50.0 | 30 | -100.5 | 99.0 | 89.0 |" in markdown
    assert bench.verdicts(speed, []) == {}  # timing only (--no-results)


@pytest.mark.large
def test_a_run_with_tiny_flags(tmp_path, write_fake_mnist, capsys):
    data = write_fake_mnist(tmp_path / "mnist.npz", 128, 64)
    out = tmp_path / "mixed.json"
    bench.main(["--arch", "mlp", "--models", "vae", "--data", str(data), "--steps", "3", "--images", "128",
                "--test-images", "64", "--timing-steps", "2", "--repeats", "2", "--probe-epochs", "1", "--no-matmul",
                "--peak-gflops", "100", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "| VAE | float32 |" in printed and "| VAE | mixed_bfloat16 |" in printed
    document = json.loads(out.read_text())
    assert [row["policy"] for row in document["speed"]] == ["float32", "mixed_bfloat16"]
    assert document["peaks"]["mixed_bfloat16"]["gflops"] == 200.0
    assert all(len(row["repeat_seconds"]) == 2 and row["step_gflop"] > 0 for row in document["speed"])
    assert all(np.isfinite(row["test_elbo"]) and set(row["probe_accuracy"]) == {"digit", "color"}
               for row in document["results"])
    assert set(document["verdicts"]) == {"vae"}
