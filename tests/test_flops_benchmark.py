"""Tests for benchmarks/flops.py and the GFLOP/s of benchmarks/train_step.py: the profiler's count of a
training step against the count from the layers' shapes, the conv net's FLOPs re-derived from Appendix F,
and the CPU's peak."""

import statistics
import types

import keras
import pytest

import keras_avae
from keras_avae import architectures

from conftest import load_benchmark

BATCH = 64
IMAGE_SHAPE = (28, 28, 3)
LATENT_DIM = 64
# TensorFlow counts a strided convolution's filter gradient over input / stride^2 positions rather than
# the output's (7 x 7 / 4 against 4 x 4 for the conv net's third stride-2 layer), and holds the first
# convolution's input gradient: measured 0.7% and 0.9% below and above the shapes' count here.
PROFILER_RTOL = 0.02


flops = load_benchmark("flops")
train_step = load_benchmark("train_step")


def _model(model_class, arch="conv", dtype=None):
    encoder, decoder = getattr(architectures, arch)(latent_dim=LATENT_DIM, input_shape=IMAGE_SHAPE, dtype=dtype)
    model = model_class(encoder, decoder, seed=0)
    model.build((None,) + IMAGE_SHAPE)
    return model


# ------------------------------------------------------------- closed forms


def test_each_layers_forward_flops_in_closed_form():
    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(5, 3, strides=2, padding="same")
    transposed = keras.layers.Conv2DTranspose(2, (3, 1), strides=2, padding="same")
    dense = keras.layers.Dense(7)
    keras.Model(inputs, dense(transposed(conv(inputs))))
    assert flops.layer_forward_flops(conv) == 2 * 4 * 4 * 5 * 3 * 3 * 3  # output 4x4x5, 3x3 kernel over 3 channels
    assert flops.layer_forward_flops(transposed) == 2 * 4 * 4 * 5 * 3 * 1 * 2  # each input pixel over a 3x1x2 patch
    assert flops.layer_forward_flops(dense) == 2 * 8 * 8 * 2 * 7  # per position of the 8x8 map
    assert flops.layer_forward_flops(keras.layers.ReLU()) == 0


def test_the_conv_nets_flops_re_derived_from_appendix_f():
    """7 conv layers (3x3, 'same', channels 8..512, strides 2,1,2,1,2,1,2) and a dense head; the decoder's
    projection onto 14x14x64 and three transposed convolutions (64, 32, 3; strides 1, 2, 1)."""
    encoder, decoder = architectures.conv(latent_dim=LATENT_DIM, input_shape=IMAGE_SHAPE)
    encoder_layers = [(14, 3, 8), (14, 8, 16), (7, 16, 32), (7, 32, 64), (4, 64, 128), (4, 128, 256), (2, 256, 512)]
    expected_encoder = sum(2 * side * side * c_in * c_out * 9 for side, c_in, c_out in encoder_layers)
    expected_encoder += 2 * (2 * 2 * 512) * (2 * LATENT_DIM)
    decoder_layers = [(14, 64, 64), (14, 64, 32), (28, 32, 3)]  # (input side, in, out) of each transposed conv
    expected_decoder = 2 * LATENT_DIM * 14 * 14 * 64
    expected_decoder += sum(2 * side * side * c_in * c_out * 9 for side, c_in, c_out in decoder_layers)
    assert flops.forward_flops(encoder) == expected_encoder == 24_552_128
    assert flops.forward_flops(decoder) == expected_decoder == 24_636_416
    assert flops.first_layer_flops(encoder) == 2 * 14 * 14 * 3 * 8 * 9
    vae, avae = _model(keras_avae.VAE), _model(keras_avae.AVAE)
    first = flops.first_layer_flops(encoder)
    assert flops.analytic_step_flops(vae, BATCH) == BATCH * (3 * expected_encoder - first + 3 * expected_decoder)
    assert flops.analytic_step_flops(avae, BATCH) == BATCH * 2 * (3 * expected_encoder - first) + BATCH * 3 * expected_decoder
    with pytest.raises(ValueError, match="`model` must be a VAE or an AVAE. Received: SmoothEncoder"):
        flops.analytic_step_flops(keras_avae.SmoothEncoder(*architectures.mlp(latent_dim=2, input_shape=(3,))), BATCH)


# ----------------------------------------------------------- the profiler


@pytest.mark.parametrize("arch", ["conv", "mlp"])
@pytest.mark.parametrize("model_class", [keras_avae.VAE, keras_avae.AVAE], ids=["vae", "avae"])
def test_the_profilers_count_agrees_with_the_layers_shapes(model_class, arch):
    model = _model(model_class, arch)
    counted = flops.step_flops(model, BATCH)
    analytic = flops.analytic_step_flops(model, BATCH)
    products = counted["convolution"] + counted["matmul"]
    assert products == pytest.approx(analytic, rel=PROFILER_RTOL if arch == "conv" else 0)
    assert counted["total"] == sum(counted["by_op"].values()) == products + counted["other"]
    assert 0 < counted["other"] < 0.02 * counted["total"]  # elementwise ops: a small share
    if arch == "conv":
        assert set(counted["by_op"]) >= set(flops.CONVOLUTION_OPS)
        assert counted["convolution"] > 0.9 * counted["total"]  # the dense layers: the rest


def test_the_dtype_policy_does_not_change_the_count():
    assert flops.step_flops(_model(keras_avae.VAE, "mlp", "mixed_bfloat16"), BATCH)["total"] == pytest.approx(
        flops.step_flops(_model(keras_avae.VAE, "mlp"), BATCH)["total"], rel=1e-3
    )


# --------------------------------------------------------------- the peak

CPUINFO = """processor\t: 0
model name\t: AMD EPYC
cpu family\t: 25
model\t\t: 17
cpu MHz\t\t: 2596.152
bogomips\t: 5192.30

processor\t: 1
model name\t: AMD EPYC
cpu family\t: 25
model\t\t: 17
cpu MHz\t\t: 2596.152
bogomips\t: 5192.30
"""


def test_the_peak_is_cores_times_clock_times_flops_per_cycle(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO)
    assert flops.cpu_clock_mhz(cpuinfo) == 2596.152
    assert flops.cpu_model(cpuinfo) == "AMD EPYC, family 25 model 17"
    assert flops.cpu_model(tmp_path / "absent") == "unknown"
    peak = flops.cpu_peak("float32", cores=2, clock_mhz=2596.152)
    assert peak["gflops"] == pytest.approx(2 * 2.596152 * 32)  # 166.2
    assert peak["formula"] == "2 cores x 2.596 GHz x 32 FLOP/cycle = 166.2 GFLOP/s"
    assert flops.cpu_peak("mixed_bfloat16", cores=2, clock_mhz=2596.152)["gflops"] == pytest.approx(2 * peak["gflops"])
    given = flops.cpu_peak("mixed_bfloat16", override_gflops=200)
    assert (given["gflops"], given["source"]) == (400.0, "--peak-gflops")
    assert flops.FP32_FLOPS_PER_CYCLE == 2 * 8 * 2  # two 256-bit FMA pipes x 8 float32 lanes x multiply-add


def test_an_unknown_clock_gives_no_peak(monkeypatch):
    monkeypatch.setattr(flops, "cpu_clock_mhz", lambda: None)
    peak = flops.cpu_peak("float32", cores=2)
    assert peak["gflops"] is None and "pass --peak-gflops" in peak["formula"]


def test_a_matrix_product_is_timed():
    assert flops.matmul_gflops("float32", size=64, repeats=1) > 0


# ---------------------------------------------------- train_step's columns


def test_train_step_reports_gflops_beside_the_peak(capsys):
    runner = types.SimpleNamespace(jit_compile=False, steps_per_execution=10)
    config = train_step.CONFIGS[0]
    case = train_step.Case("conv", "vae", config, runner, steps=10, step_flops=9_000_000_000)
    case.seconds, case.cpu_seconds = [0.5, 0.6, 0.4], [0.9, 1.0, 0.8]
    (row,) = train_step.summarise([case], peak_gflops=360.0)
    step_s = statistics.median(case.seconds) / case.steps
    assert row["gflops"] == pytest.approx(9.0 / step_s) == pytest.approx(180.0)
    assert row["peak_fraction"] == pytest.approx(0.5) and row["step_gflop"] == 9.0
    assert train_step.summarise([case])[0]["peak_fraction"] is None
    train_step.print_table([row])
    assert "GFLOP/s" in capsys.readouterr().out
    args = train_step.parse_args(["--peak-gflops", "200", "--no-matmul"])
    limits = train_step.machine_limits(args)
    assert limits["peak"]["gflops"] == 200.0 and limits["matmul_gflops"] is None


def test_the_ceiling_is_the_matmul_where_it_beats_the_derived_peak():
    peak = {"gflops": 166.2}
    assert flops.ceiling(peak, 209.9) == {"gflops": 209.9, "source": "matmul"}
    assert flops.ceiling(peak, 120.0) == {"gflops": 166.2, "source": "derived peak"}
    assert flops.ceiling(peak) == {"gflops": 166.2, "source": "derived peak"}
    assert flops.ceiling({"gflops": None}, 50.0)["source"] == "matmul"
