"""Floating-point operations of one training step, and this CPU's peak, for the benchmarks' GFLOP/s.

    step_flops(model, batch_size)        TensorFlow's profiler count of the traced forward and
                                         backward pass of a keras_avae model, by op type
    analytic_step_flops(model, batch)    the same from the layers' shapes: 3x the forward
                                         FLOPs of the passes that are trained
    cpu_peak(dtype_policy)               cores x clock x FLOP per cycle, read from this machine
    ceiling(peak, matmul)                the higher of the derived peak and a measured matrix product
    matmul_gflops(dtype)                 what a large matrix product reaches here, beside the peak

A FLOP is one floating-point multiply or add: a multiply-accumulate is 2. The count is of the
step's forward and backward pass (the objective and its gradient with respect to every trainable
variable), not of the optimizer's update, which is elementwise and O(parameters): for the conv
net of Appendix F a few tens of MFLOP against GFLOPs.

The benchmarks in this folder import this module from beside them (`benchmarks/` is not a
package); the tests load it by path (tests/test_flops_benchmark.py).

Example:
    total = step_flops(model, batch_size=64)["total"]
    print(total / seconds_per_step / 1e9, "GFLOP/s of", cpu_peak("float32")["gflops"])
"""

import os
import re
import subprocess
import time

import keras
import tensorflow as tf

import keras_avae
from keras_avae.models.compilation import sublayers

# --------------------------------------------------------------- counting

CONVOLUTION_OPS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter")
"""The TensorFlow ops of a 2-D convolution's forward and backward pass: `Conv2DTranspose`'s forward
pass is a `Conv2DBackpropInput`, and the input gradient of a transposed convolution a `Conv2D`."""

MATMUL_OPS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")


def profile_flops(concrete_function):
    """FLOPs of every op of a traced `tf.function`'s graph, by op type, as TensorFlow's profiler counts them.

    The profiler (`tf.compat.v1.profiler`, `ProfileOptionBuilder.float_operation()`) knows the FLOPs
    of the ops that register them from static shapes (`tensorflow/python/profiler/internal/
    flops_registry.py`, and the convolutions in `nn_ops.py`): convolutions and their gradients,
    matrix products, and most elementwise arithmetic and reductions. Ops without a count (ReLU,
    sigmoid, exp, BatchNorm's fused kernels, random numbers) count 0: next to the convolutions they
    are a few per cent. Ops inside nested function graphs (`tf.cond`, `tf.while_loop` bodies) are
    not counted.

    Args:
        concrete_function: a traced `tf.function` whose input shapes are fully defined.

    Returns:
        Dict op type -> FLOPs (only the ops that have any).
    """
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # the profiler's TF1 deprecation notice
    try:
        profile = tf.compat.v1.profiler.profile(graph=concrete_function.graph, cmd="op", options=options)
    finally:
        logger.setLevel(level)
    counts = {}
    pending = list(profile.children)
    while pending:  # the "op" view chains the op types, each node holding its own count
        node = pending.pop()
        pending.extend(node.children)
        if node.float_ops:
            counts[node.name] = counts.get(node.name, 0) + int(node.float_ops)
    return counts


def step_flops(model, batch_size, example_shape=None):
    """FLOPs of one training step's forward and backward pass of a keras_avae model, by kind.

    Traces, without running it, the objective that `fit` minimises (`model.terms(x, training=True)`,
    averaged over the batch) and its gradient with respect to `model.trainable_variables`, for a batch
    of `batch_size` images, and counts it with `profile_flops`. The dtype policy does not change
    the count: a bfloat16 convolution does the same operations.

    Args:
        model: a built `keras_avae.VAE` or subclass.
        batch_size: images per step.
        example_shape: shape of one image (default: the model's `example_shape`).

    Returns:
        Dict with `total`, `convolution` (`CONVOLUTION_OPS`), `matmul` (`MATMUL_OPS`), `other`
        (everything else counted) and `by_op` (op type -> FLOPs).
    """
    shape = tuple(example_shape or model.example_shape)
    variables = model.trainable_variables

    @tf.function(autograph=False)
    def forward_backward(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model.terms(x, training=True)["loss"])
        return loss, tape.gradient(loss, variables)

    by_op = profile_flops(forward_backward.get_concrete_function(tf.TensorSpec((batch_size, *shape), tf.float32)))
    convolution = sum(by_op.get(op, 0) for op in CONVOLUTION_OPS)
    matmul = sum(by_op.get(op, 0) for op in MATMUL_OPS)
    total = sum(by_op.values())
    return {
        "total": total,
        "convolution": convolution,
        "matmul": matmul,
        "other": total - convolution - matmul,
        "by_op": by_op,
    }


def layer_forward_flops(layer):
    """Forward FLOPs per example of one `Conv2D`, `Conv2DTranspose` or `Dense` layer of a built
    Functional network, from its shapes (bias additions left out); 0 for any other layer.

        Conv2D            2 * H_out * W_out * C_out * k_h * k_w * C_in
        Conv2DTranspose   2 * H_in  * W_in  * C_in  * k_h * k_w * C_out   (each input pixel is spread
                          over a k_h x k_w x C_out patch)
        Dense             2 * inputs * units, per position of any leading axes
    """
    if isinstance(layer, keras.layers.Conv2DTranspose):
        _, height, width, channels_in = layer.input.shape
        kernel_height, kernel_width = layer.kernel_size
        return 2 * height * width * channels_in * kernel_height * kernel_width * layer.filters
    if isinstance(layer, keras.layers.Conv2D):
        _, height, width, channels_out = layer.output.shape
        kernel_height, kernel_width = layer.kernel_size
        channels_in = layer.input.shape[-1]
        return 2 * height * width * channels_out * kernel_height * kernel_width * channels_in // layer.groups
    if isinstance(layer, keras.layers.Dense):
        positions = 1
        for size in layer.input.shape[1:-1]:
            positions *= size
        return 2 * positions * layer.input.shape[-1] * layer.units
    return 0


def forward_flops(network):
    """Forward FLOPs per example of a built Functional network: `layer_forward_flops` summed over its
    layers at any depth (each applied once)."""
    return sum(layer_forward_flops(layer) for layer in sublayers(network) if layer is not network)


BACKWARD_FACTOR = 2
"""The backward pass of a convolution or matrix product costs twice its forward pass: one product
of the same size for the gradient with respect to the input, one for the weights."""

ENCODER_PASSES = {keras_avae.VAE: 1, keras_avae.AVAE: 2}
"""Trained passes through the encoder per step: the data's, and for the AVAE the delusion's
(Algorithm 1 line 8; the decoder runs once, the delusion is decoded from the same z)."""


def first_layer_flops(network):
    """Forward FLOPs per example of the first layer of `network` that has any (`layer_forward_flops`)."""
    return next((flops for flops in map(layer_forward_flops, sublayers(network)[1:]) if flops), 0)


def analytic_step_flops(model, batch_size):
    """FLOPs of one training step's forward and backward pass from the layers' shapes.

    Per example, (1 + `BACKWARD_FACTOR`) x the forward FLOPs (`forward_flops`) of one decoder pass
    and of each of the model's encoder passes (`ENCODER_PASSES`), less, for each encoder pass, the
    input gradient of the encoder's first layer (its input is the data, or the delusion, which
    is held fixed); times `batch_size`. It counts the convolutions and dense layers only, so it
    should agree with `step_flops`' convolutions and matrix products to within TensorFlow's
    approximations of strided gradients, and the first convolution's input gradient, which
    TensorFlow's graph holds (and its runtime prunes).

    Args:
        model: a built `keras_avae.VAE` or `keras_avae.AVAE` (not a subclass of AVAE).
        batch_size: images per step.
    """
    passes = ENCODER_PASSES.get(type(model))
    if passes is None:
        raise ValueError(f"`model` must be a VAE or an AVAE. Received: {type(model).__name__}")
    encoder = (1 + BACKWARD_FACTOR) * forward_flops(model.encoder) - first_layer_flops(model.encoder)
    decoder = (1 + BACKWARD_FACTOR) * forward_flops(model.decoder)
    return (passes * encoder + decoder) * batch_size


# ------------------------------------------------------------------ peak

FP32_FLOPS_PER_CYCLE = 32
"""float32 FLOP per cycle and core of AMD Zen 4 (EPYC 9004 "Genoa", family 25 model 17): it runs
AVX-512 on two 256-bit FMA pipes, a 512-bit FMA in two halves; 2 pipes x 8 float32 lanes x 2
(a fused multiply-add is two FLOPs). A CPU with two 512-bit FMA units (recent Intel Xeon) does 64."""

BF16_FLOPS_PER_CYCLE = 2 * FP32_FLOPS_PER_CYCLE
"""bfloat16 FLOP per cycle and core with AVX512_BF16: `vdpbf16ps` multiplies two pairs of
bfloat16 and adds both products to each float32 lane (4 FLOPs per lane), at the FMA's rate: twice
the float32 peak. oneDNN's bfloat16 convolutions and matrix products use it."""

FLOPS_PER_CYCLE = {"float32": FP32_FLOPS_PER_CYCLE, "mixed_bfloat16": BF16_FLOPS_PER_CYCLE}
"""FLOP per cycle and core, by the dtype policy the networks compute in."""

CPUINFO = "/proc/cpuinfo"


def cpu_clock_mhz(cpuinfo=CPUINFO):
    """The cores' clock in MHz as Linux reports it, or None where it does not.

    The mean of `/proc/cpuinfo`'s "cpu MHz" lines, else `lscpu`'s "CPU MHz" or "CPU max MHz". On
    this project's KVM machine "cpu MHz" is the TSC frequency the hypervisor reports (2596 MHz;
    its "bogomips" is twice that, 5192, as on any x86 with a constant TSC), not a measured clock:
    a Zen 4 core may boost above it, so the peak derived from it may be below the true one.
    """
    try:
        with open(cpuinfo) as file:
            text = file.read()
    except OSError:
        text = ""
    values = [float(value) for value in re.findall(r"^cpu MHz\s*:\s*([0-9.]+)", text, re.MULTILINE)]
    if values:
        return sum(values) / len(values)
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for name in ("CPU MHz", "CPU max MHz"):
        match = re.search(rf"^{name}:\s*([0-9.]+)", text, re.MULTILINE)
        if match:
            return float(match.group(1))
    return None


def cpu_model(cpuinfo=CPUINFO):
    """`"<model name>, family F model M"` from `/proc/cpuinfo`, or "unknown"."""
    try:
        with open(cpuinfo) as file:
            text = file.read()
    except OSError:
        return "unknown"
    fields = {}
    for key in ("model name", "cpu family", "model"):
        match = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
        if match:
            fields[key] = match.group(1).strip()
    if not fields:
        return "unknown"
    return f"{fields.get('model name', '?')}, family {fields.get('cpu family', '?')} model {fields.get('model', '?')}"


def cpu_peak(dtype_policy="float32", cores=None, clock_mhz=None, override_gflops=None):
    """This CPU's peak GFLOP/s for networks computing in `dtype_policy`: cores x GHz x FLOP per cycle.

    Args:
        dtype_policy: `"float32"` (`FP32_FLOPS_PER_CYCLE`) or `"mixed_bfloat16"` (`BF16_FLOPS_PER_CYCLE`).
        cores: cores to count (default `os.cpu_count()`, the logical CPUs; this project's machine has
            2 vCPUs, one thread per core).
        clock_mhz: the clock (default `cpu_clock_mhz()`).
        override_gflops: the float32 peak to use instead (`--peak-gflops`), e.g. for another CPU
            whose FLOP per cycle differ from Zen 4's; the bfloat16 peak is then this times
            `BF16_FLOPS_PER_CYCLE / FP32_FLOPS_PER_CYCLE`.

    Returns:
        Dict with `gflops` (None if the clock is unknown and no override is given), `cores`,
        `clock_mhz`, `flops_per_cycle`, `source` ("derived" or "--peak-gflops") and `formula`
        (the derivation, for printing).
    """
    flops_per_cycle = FLOPS_PER_CYCLE[dtype_policy]
    cores = cores or os.cpu_count()
    clock_mhz = clock_mhz or cpu_clock_mhz()
    if override_gflops is not None:
        gflops = float(override_gflops) * flops_per_cycle / FP32_FLOPS_PER_CYCLE
        return {
            "gflops": gflops, "cores": cores, "clock_mhz": clock_mhz, "flops_per_cycle": flops_per_cycle,
            "source": "--peak-gflops", "formula": f"{gflops:.1f} GFLOP/s (from --peak-gflops {float(override_gflops):g})",
        }
    gflops = cores * clock_mhz / 1e3 * flops_per_cycle if clock_mhz else None
    formula = (
        f"{cores} cores x {clock_mhz / 1e3:.3f} GHz x {flops_per_cycle} FLOP/cycle = {gflops:.1f} GFLOP/s"
        if gflops else "unknown (no clock found; pass --peak-gflops)"
    )
    return {
        "gflops": gflops, "cores": cores, "clock_mhz": clock_mhz, "flops_per_cycle": flops_per_cycle,
        "source": "derived", "formula": formula,
    }


MATMUL_SIZE = 2048
"""Side of the square matrices `matmul_gflops` multiplies: 17 GFLOP per product, large enough for
oneDNN to run near its best and small enough to take well under a second."""


def matmul_gflops(dtype="float32", size=MATMUL_SIZE, repeats=5):
    """GFLOP/s of a square float32 or bfloat16 matrix product in a `tf.function`, best of `repeats`:
    what this machine's TensorFlow reaches on the simplest dense kernel, beside the derived peak (a
    clock above the reported one, or a busy machine, shows here).

    Args:
        dtype: `"float32"` or `"bfloat16"`.
        size: side of the matrices.
        repeats: timed products, after one untimed.
    """
    matrix = tf.cast(tf.random.stateless_normal((size, size), seed=(0, 0)), dtype)
    product = tf.function(lambda a: tf.linalg.matmul(a, a))
    product(matrix).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product(matrix).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def ceiling(peak, matmul=None):
    """The rate a step's GFLOP/s is read against: the derived `peak` (`cpu_peak`), or what a matrix
    product measured here reaches (`matmul_gflops`) where that is higher, which shows the derived
    peak to be too low (on this KVM machine the cores run above the clock /proc/cpuinfo reports).

    Returns:
        A dict with `gflops` and `source` ("derived peak" or "matmul").
    """
    if matmul is not None and (peak["gflops"] is None or matmul > peak["gflops"]):
        return {"gflops": matmul, "source": "matmul"}
    return {"gflops": peak["gflops"], "source": "derived peak"}


def add_limit_arguments(parser, dtypes="a float32 matrix product"):
    """`--peak-gflops` (the float32 peak instead of `cpu_peak`'s; bfloat16's is twice it) and
    `--no-matmul` (skip timing `dtypes` beside the peak), for the scripts that print % peak."""
    parser.add_argument("--peak-gflops", type=float, default=None, metavar="GFLOPS",
                        help="this CPU's float32 peak (bfloat16: twice it), instead of cores x clock x 32 FLOP/cycle")
    parser.add_argument("--no-matmul", dest="matmul", action="store_false",
                        help=f"skip timing {dtypes} beside the peak")
