"""Where a training step's time goes: a TensorFlow profiler trace of `fit` at the defaults, summarised.

Each case is a model of Cemgil et al. (2020) on the paper's ColorMNIST networks
(`keras_avae.architectures.mlp()` / `.conv()`, latent 64, images (28, 28, 3), batch 64, Adam 1e-4),
compiled as a user would, `model.compile(optimizer=keras.optimizers.Adam(1e-4))`, so every other
setting is the library's default: `jit_compile="auto"` resolved per model (XLA for the MLP on a
CPU-only machine, none for the conv net) and `DEFAULT_STEPS_PER_EXECUTION` steps per execution.
`fit` reads a NumPy array of random images in [0, 1] with `batch_size` (the README's call, and
benchmarks/peer.py's: the array is checked whole before training), or with `--data dataset` a
`tf.data.Dataset` of batches (benchmarks/train_step.py's: checked batch by batch in the input
pipeline).

    mlp_vae            VAE, eq. (2)
    mlp_avae           AVAE at its defaults: the sampled delusion x~ = g(z) + sqrt(v) eps, an
                       image-sized Gaussian draw per step
    mlp_avae_theirs    AVAE with the authors' choices, `delusion="mean", posterior_sampling="variance"`
    conv_vae           VAE
    conv_avae          AVAE at its defaults
    conv_se            SmoothEncoder at its defaults (epsilon 0.1, `DEFAULT_TRAIN_ATTACK_STEPS` = 5
                       PGD steps per training step, the attack in inference mode)
    conv_seavae        SEAVAE at its defaults (the same attack, and the AVAE's sampled delusion)

Every case is first trained untraced: `--repeats` epochs of `--steps` steps, the cases in an order
rotated from repeat to repeat (so a noisy machine slows them alike), timed from the epoch's start to
its end (a callback); the median is "ms/step". Then one more epoch of `--steps` steps runs under
`tf.profiler.experimental.start/stop`, and its trace (the `*.xplane.pb` that TensorFlow writes
under `<logdir>/<case>/plugins/profile/<run>/`) is read with the XSpace protocol buffer that
TensorFlow ships (`tensorflow.tsl.profiler.protobuf.xplane_pb2`): no converter of xprof or
`tensorboard_plugin_profile` is needed, and none is installed here. What the summary says:

(a) wall time against graph time. On the Python thread, the calls of Keras' train function
    (`EagerLocalExecute: __inference_multi_step_on_iterator_*`, one per execution of
    `steps_per_execution` steps) mark the profiled window, from the first call's start to the last
    call's end. Per step: "python" is the window's time outside those calls (Keras' loop, its
    callbacks and logs, the dispatch of the next call); "graph" is the time inside them less XLA's
    ("TF executor": the steps' loop, the input's hand-over, and every TensorFlow op of a step that
    XLA does not compile); "xla" is the time of the compiled step's executions
    (`CpuExecutable::ExecuteAsyncOnStream`). The three are shares of the window and sum to 1. What
    an epoch costs outside the window (making and deleting its iterator) is "epoch overhead",
    once per epoch. Also listed: what the Python thread itself records outside the calls, the
    self time of the compute threads outside any op (TensorFlow's executor and XLA's runtime; a
    thread that waits for XLA's thunks on other threads shows `BlockUntilReady`), and the busy
    time of the input pipeline's own threads, which run beside the step.
(b) the ops by self time, ms per step and share of all op time. Without XLA they are TensorFlow's
    ops ("name:Type" events on the executor's threads), named by the model's scopes. Under XLA
    they are the compiled step's thunks (fusions, dots, copies), traced one by one because this
    script runs with `XLA_FLAGS=--xla_cpu_enable_xprof_traceme=true`; XLA names them after HLO
    instructions (`add_bitcast_fusion`, `MatMul.90`), so the script also dumps the optimised HLO
    (`--xla_dump_to=<logdir>/hlo`) and reads each instruction's TensorFlow op type and name from its
    metadata (for a fusion: the fused instructions'). Self time is an op's duration less that of
    ops nested in it on the same thread; ops on two threads at once both count, so the op total
    can exceed the graph time. The op types are also summed over all ops of a type.
(c) for the models with a training attack (SmoothEncoder, SEAVAE): the share of op time in the
    attack's ops (`keras_avae.attacks.ATTACK_NAME_SCOPE`: its encoding of the clean x, scope
    `target`, and its PGD steps) against the rest of the step; and for every case the share of op
    time in ops that draw random numbers (under XLA: the fusions most of whose instructions come
    from a random op, with whatever XLA fused into them, e.g. the add of x~ = g(z) + sqrt(v) eps).

Last, the step times over the VAE's of the same architecture (untraced, and inside the train
function only) beside the paper's Table 1 "Time" column: AVAE x1.5, SE x4, SE-AVAE x4.7, measured
on an NVIDIA Tesla P100 GPU (appendix F) with the ConvNet; Table 1 labels SE "SE^5_eps", 5 PGD
steps in training as Table 2's caption reads the superscript, while appendix F says the ColorMNIST
training attacks had an iteration budget of 20.

The traced epoch is slower than the untraced ones (the profiler records every op); the ratios
come from the untraced epochs. The XLA trace flag is set for the untraced epochs too.

`--noise` also times the sampled delusion's draw alone, x + sqrt(v) eps with eps ~ N(0, I) of
shape (batch, 28, 28, 3), in one `tf.function` per way of drawing it, with and without XLA:
`tf.random.stateless_normal` with `alg` "philox" (the models' `RANDOM_ALGORITHM`), "threefry"
(XLA only: TensorFlow's kernel has none) and "auto_select", `keras.random.normal`, and, if JAX
is installed, `jax.random.normal` under `jax.jit` (the authors' framework); "none" adds nothing.

Usage:
    python benchmarks/profile_step.py
    python benchmarks/profile_step.py --cases mlp_vae,mlp_avae,mlp_avae_theirs --steps 200 --repeats 5
    python benchmarks/profile_step.py --cases conv_se --steps 20 --logdir runs/profile --json runs/profile.json
    python benchmarks/profile_step.py --cases none --noise --repeats 7
"""

import argparse
import collections
import dataclasses
import glob
import json
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

XLA_TRACE_FLAG = "--xla_cpu_enable_xprof_traceme=true"
"""Makes XLA:CPU record one trace event per thunk (fusion, dot, copy) of a compiled step."""

HLO_DIRECTORY = "hlo"
"""Where, under the log directory, XLA dumps the optimised HLO of the compiled steps."""

TRAIN_MODULE_PATTERN = ".*one_step_on_data.*"
"""The HLO modules to dump: Keras' compiled training step (`one_step_on_data`)."""


def xla_flags(logdir):
    """The XLA flags this script adds: a trace event per thunk, and the steps' optimised HLO as text."""
    return [
        XLA_TRACE_FLAG,
        f"--xla_dump_to={os.path.join(logdir, HLO_DIRECTORY)}",
        "--xla_dump_hlo_as_text",
        f"--xla_dump_hlo_module_re={TRAIN_MODULE_PATTERN}",
    ]


def _early_logdir(argv):
    """`--logdir` (or a new temporary directory), read before TensorFlow is imported."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--logdir")
    known, _ = parser.parse_known_args(argv)
    return known.logdir or tempfile.mkdtemp(prefix="profile_step_")


if __name__ == "__main__":
    # XLA reads its flags once, when TensorFlow first uses it: they must be set before the import.
    LOGDIR = _early_logdir(sys.argv[1:])
    os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), *xla_flags(LOGDIR)]).strip()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from arguments import names, positive_int  # noqa: E402  (beside this file)
from train_step import EpochTimer, environment, make_dataset  # noqa: E402  (beside this file)

import keras_avae  # noqa: E402
from keras_avae.attacks import ATTACK_NAME_SCOPE, ATTACK_TARGET_NAME_SCOPE  # noqa: E402

LATENT_DIM = 64
IMAGE_SHAPE = (28, 28, 3)
LEARNING_RATE = 1e-4
SEED = 0
DEFAULT_BATCH_SIZE = 64
DEFAULT_STEPS = {"mlp": 100, "conv": 30}
# Several executions of `DEFAULT_STEPS_PER_EXECUTION` steps each: the Python between them is what the window shows.
DEFAULT_REPEATS = 3
DEFAULT_TOP = 15

CASES = {
    "mlp_vae": ("mlp", "vae", lambda networks: keras_avae.VAE(*networks, seed=SEED)),
    "mlp_avae": ("mlp", "avae", lambda networks: keras_avae.AVAE(*networks, seed=SEED)),
    "mlp_avae_theirs": (
        "mlp",
        "avae_theirs",
        lambda networks: keras_avae.AVAE(*networks, delusion="mean", posterior_sampling="variance", seed=SEED),
    ),
    "conv_vae": ("conv", "vae", lambda networks: keras_avae.VAE(*networks, seed=SEED)),
    "conv_avae": ("conv", "avae", lambda networks: keras_avae.AVAE(*networks, seed=SEED)),
    "conv_se": ("conv", "se", lambda networks: keras_avae.SmoothEncoder(*networks, seed=SEED)),
    "conv_seavae": ("conv", "seavae", lambda networks: keras_avae.SEAVAE(*networks, seed=SEED)),
}
ARCHITECTURES = {"mlp": keras_avae.architectures.mlp, "conv": keras_avae.architectures.conv}

PAPER_TIME = {"vae": 1.0, "avae": 1.5, "se": 4.0, "seavae": 4.7}
"""Table 1's "Time" (ColorMNIST, ConvNet): wall-clock time over the VAE's, on an NVIDIA Tesla P100."""
PAPER_NOTE = (
    "Table 1 (ColorMNIST, ConvNet), wall-clock time over the VAE's on an NVIDIA Tesla P100 (appendix F); "
    "SE labelled SE^5 (5 PGD steps in training, as Table 2 reads the superscript), while appendix F gives "
    "the ColorMNIST training attacks an iteration budget of 20"
)

# ------------------------------------------------------------------ the trace

TRAIN_CALL = re.compile(r"^EagerLocalExecute: __inference_\w*step_on_(iterator|data)\w*$")
"""A call of Keras' train function on the Python thread (one execution of `steps_per_execution` steps)."""
XLA_EXECUTION = "CpuExecutable::ExecuteAsyncOnStream"
TF_OP = re.compile(r"^(?P<name>[^\s:]+):(?P<type>[A-Za-z_]\w*)$")
"""A TensorFlow op's event, "name:Type"."""
CALL_OP_TYPES = frozenset(
    {"StatefulPartitionedCall", "PartitionedCall", "While", "StatelessWhile", "If", "StatelessIf", "Case",
     "StatelessCase", "_XlaLaunch", "XlaLaunch", "_XlaRun", "_XlaCompile"}
)
"""Ops that run a function: their time is their inner ops', listed by these."""
CALL_PREFIX = re.compile(r"^(?:while/[^:]*?/)?StatefulPartitionedCall/")
"""What the executor prefixes to the names of ops inside Keras' train function."""
RANDOM_OP = re.compile(r"Random|Rng")
"""TensorFlow op types that draw random numbers."""
NO_OP_TYPE = "(no op type)"
"""The type of an XLA instruction whose metadata names no TensorFlow op type (a copy XLA added, ...)."""
ATTACK_TARGET_PATH = f"{ATTACK_NAME_SCOPE}/{ATTACK_TARGET_NAME_SCOPE}"
MAJORITY = 0.5
INPUT_LINE_PREFIX = "tf_data"
OTHER = "(other ops)"
PS_PER_MS = 1e9


@dataclasses.dataclass
class Event:
    """One trace event on one thread: times in picoseconds since the epoch of the trace."""

    name: str
    start: int
    duration: int
    stats: dict

    @property
    def end(self):
        return self.start + self.duration


def read_xspace(logdir):
    """The newest `*.xplane.pb` under `<logdir>/plugins/profile/<run>/`, parsed."""
    paths = sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb")), key=os.path.getmtime)
    if not paths:
        raise FileNotFoundError(f"no *.xplane.pb under {logdir}/plugins/profile/: did the profiler run?")
    xspace = xplane_pb2.XSpace()
    with open(paths[-1], "rb") as file:
        xspace.ParseFromString(file.read())
    return xspace


def _stat_value(stat, names):
    kind = stat.WhichOneof("value")
    value = getattr(stat, kind) if kind else None
    return names.get(value, value) if kind == "ref_value" else value


def host_lines(xspace):
    """`[(thread name, [Event, ...]), ...]` of the host plane ("/host:CPU"), events in time order."""
    lines = []
    for plane in xspace.planes:
        if plane.name != "/host:CPU":
            continue
        stat_names = {key: value.name for key, value in plane.stat_metadata.items()}
        for line in plane.lines:
            base = line.timestamp_ns * 1000
            events = []
            for event in line.events:
                stats = {stat_names.get(stat.metadata_id, stat.metadata_id): _stat_value(stat, stat_names)
                         for stat in event.stats}
                events.append(Event(plane.event_metadata[event.metadata_id].name, base + event.offset_ps,
                                    event.duration_ps, stats))
            events.sort(key=lambda event: (event.start, -event.duration))
            lines.append((line.name, events))
    return lines


def self_times(events):
    """`[(event, self time)]`: each event's duration less that of the events nested directly in it.

    `events` are one thread's, in time order (longest first at equal starts); an event nests in
    another when it starts and ends inside it.
    """
    result = []
    stack = []  # indices into result of the open events
    for event in events:
        while stack and result[stack[-1]][0].end <= event.start:
            stack.pop()
        if stack and event.end <= result[stack[-1]][0].end:
            parent = stack[-1]
            result[parent] = (result[parent][0], result[parent][1] - event.duration)
        result.append((event, event.duration))
        stack.append(len(result) - 1)
    return result


def is_random(op_type, op_name=""):
    """Whether a TensorFlow op draws random numbers: by its type, or by its name's last part where XLA kept no type."""
    return bool(RANDOM_OP.search(op_type or op_name.rsplit("/", 1)[-1]))


def clean_op_name(name):
    """A TensorFlow op's name without the prefix of Keras' train function (its loop and call)."""
    return CALL_PREFIX.sub("", name)


def in_scope(name, scope):
    """Whether op `name` lies in name scope `scope` (a path of whole scope names)."""
    return f"/{scope}/" in f"/{name}"


# ---------------------------------------------------------------- XLA's HLO

HLO_MODULE = re.compile(r"^HloModule\s+([\w.\-]+)")
HLO_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
HLO_INSTRUCTION = re.compile(r"^\s+(?:ROOT\s+)?%?([\w.\-]+)\s*=")
HLO_CALLS = re.compile(r"\b(?:calls|to_apply|body|condition)=%?([\w.\-]+)")
HLO_OP_TYPE = re.compile(r'op_type="([^"]*)"')
HLO_OP_NAME = re.compile(r'op_name="([^"]*)"')


@dataclasses.dataclass
class HloOp:
    """What an HLO instruction of a compiled step came from.

    `op_type` and `op_name` are its own metadata's (for a fusion, XLA's copy of its root's), filled
    in from the instructions it holds where missing; `held` counts the `(op type, op name)` of the
    instructions it stands for: itself, or those it calls (a fusion's fused instructions).
    """

    op_type: str
    op_name: str
    held: collections.Counter

    def fraction(self, predicate):
        """The fraction of its instructions with TensorFlow metadata for which `predicate(op_type, op_name)` holds."""
        total = sum(self.held.values())
        return sum(count for key, count in self.held.items() if predicate(*key)) / total if total else 0.0

    def main_types(self, count=3):
        types = collections.Counter()
        for (op_type, _), number in self.held.items():
            if op_type:
                types[op_type] += number
        return [op_type for op_type, _ in types.most_common(count)]


def parse_hlo_module(text):
    """`(module name, {instruction: HloOp})` of an HLO module's text (XLA's `--xla_dump_hlo_as_text`)."""
    module = None
    computations = collections.defaultdict(list)
    instructions = {}
    current = None
    for line in text.splitlines():
        if module is None and (match := HLO_MODULE.match(line)):
            module = match.group(1)
            continue
        if not line.startswith((" ", "\t")) and (match := HLO_COMPUTATION.match(line)):
            current = match.group(1)
            continue
        if current is None or not (match := HLO_INSTRUCTION.match(line)):
            continue
        name = match.group(1)
        op_type, op_name = HLO_OP_TYPE.search(line), HLO_OP_NAME.search(line)
        instructions[name] = (
            op_type.group(1) if op_type else "",
            op_name.group(1) if op_name else "",
            HLO_CALLS.findall(line),
        )
        computations[current].append(name)

    def held(name, seen):
        """The (op_type, op_name) of an instruction, or of the instructions it calls (a fusion's: its own
        metadata is its root's copy), depth first."""
        op_type, op_name, calls = instructions[name]
        pairs = [(op_type, op_name)] if (op_type or op_name) and not calls else []
        for computation in calls:
            if computation in seen:
                continue
            seen.add(computation)
            for inner in computations.get(computation, ()):
                pairs.extend(held(inner, seen))
        return pairs

    ops = {}
    for name, (op_type, op_name, _) in instructions.items():
        pairs = collections.Counter(held(name, set()))
        if not op_name and pairs:
            names = collections.Counter()
            for (_, inner_name), count in pairs.items():
                if inner_name:
                    names[inner_name] += count
            op_name = names.most_common(1)[0][0] if names else ""
        if not op_type and op_name:  # the type of an instruction it holds from the same TensorFlow op
            op_type = next((inner_type for inner_type, inner_name in pairs if inner_name == op_name and inner_type), "")
        ops[name] = HloOp(op_type, op_name, pairs)
    return module, ops


def read_hlo(logdir):
    """`{module name: {instruction: HloOp}}` of the optimised HLO that XLA dumped under `<logdir>/hlo`."""
    index = {}
    for path in glob.glob(os.path.join(logdir, HLO_DIRECTORY, "*after_optimizations.txt")):
        with open(path) as file:
            module, ops = parse_hlo_module(file.read())
        if module:
            index[module] = ops
    return index


# ------------------------------------------------------------- the summary


def _op_row(name, op_type, kind, self_ps, count, attack, target, random, tf_op_name=None, holds=None):
    return {"name": name, "type": op_type, "kind": kind, "self_ps": self_ps, "count": count, "attack": attack,
            "attack_target": target, "random": random, "tf_op_name": tf_op_name, "holds": holds}


def collect_ops(lines, window, hlo_index):
    """Every op event on the compute threads inside `window`, by name: `{key: row}` with summed self times.

    XLA thunks (events with an `hlo_op` stat) are named by their HLO instruction, with the TensorFlow
    op they came from (`hlo_index`); TensorFlow ops by their cleaned names. An op that runs a function,
    or holds an XLA execution, is left out: its time is that of the ops inside it.
    """
    start, end = window
    rows = {}
    for line_name, events in lines:
        if line_name.startswith(INPUT_LINE_PREFIX):
            continue
        xla_executions = [event for event in events if event.name == XLA_EXECUTION]
        ops = []
        for event in events:
            if not start <= event.start < end:
                continue
            if "hlo_op" in event.stats:
                ops.append((event, "xla"))
            elif (match := TF_OP.match(event.name)) and match.group("type") not in CALL_OP_TYPES:
                if not any(event.start <= x.start and x.end <= event.end for x in xla_executions):
                    ops.append((event, "tf"))
        kinds = {id(event): kind for event, kind in ops}
        for event, self_ps in self_times([event for event, _ in ops]):
            kind = kinds[id(event)]
            if kind == "xla":
                module = str(event.stats.get("hlo_module", ""))
                hlo_name = str(event.stats["hlo_op"])
                hlo = hlo_index.get(module, {}).get(hlo_name)
                tf_name = hlo.op_name if hlo else ""
                op_type = hlo.op_type if hlo and hlo.op_type else NO_OP_TYPE
                holds = hlo.main_types() if hlo else []
                # A fusion is counted as what most of its instructions come from.
                random = bool(hlo) and hlo.fraction(is_random) > MAJORITY
                attack = bool(hlo) and hlo.fraction(lambda t, n: in_scope(n, ATTACK_NAME_SCOPE)) > MAJORITY
                target = bool(hlo) and hlo.fraction(lambda t, n: in_scope(n, ATTACK_TARGET_PATH)) > MAJORITY
                key = ("xla", module, hlo_name)
                display = hlo_name
            else:
                match = TF_OP.match(event.name)
                tf_name, op_type = clean_op_name(match.group("name")), match.group("type")
                holds = None
                random = is_random(op_type)
                attack = in_scope(tf_name, ATTACK_NAME_SCOPE)
                target = in_scope(tf_name, ATTACK_TARGET_PATH)
                key = ("tf", tf_name, op_type)
                display = tf_name
            row = rows.get(key)
            if row is None:
                rows[key] = _op_row(display, op_type, kind, self_ps, 1, attack, target, random,
                                    tf_name if kind == "xla" else None, holds)
            else:
                row["self_ps"] += self_ps
                row["count"] += 1
    return rows


def summarise_trace(xspace, steps, hlo_index=None, top=DEFAULT_TOP, epoch_seconds=None):
    """What one profiled epoch of `steps` training steps spent its time on; see the module docstring.

    Returns a dict of per-step times (ms) and shares: "wall_shares" (python, graph, xla; they sum
    to 1), "ops" (the `top` ops by self time and one row for the others; their shares sum to 1),
    "op_types", "python_events", "attack" (None without an attack) and "random".
    """
    hlo_index = hlo_index or {}
    lines = host_lines(xspace)
    python_line, calls = None, []
    for line_name, events in lines:
        found = [event for event in events if TRAIN_CALL.match(event.name)]
        if found:
            python_line, calls = (line_name, events), found
            break
    if not calls:
        raise ValueError("the trace holds no call of Keras' train function (`__inference_*step_on_*`)")
    window = (min(call.start for call in calls), max(call.end for call in calls))
    window_ps = window[1] - window[0]
    function_ps = sum(call.duration for call in calls)
    xla_ps = sum(
        event.duration
        for line_name, events in lines
        if not line_name.startswith(INPUT_LINE_PREFIX)
        for event in events
        if event.name == XLA_EXECUTION and window[0] <= event.start < window[1]
    )
    xla_ps = min(xla_ps, function_ps)
    python_ps = max(window_ps - function_ps, 0)
    graph_ps = function_ps - xla_ps

    def per_step(ps):
        return ps / PS_PER_MS / steps

    # What the Python thread itself records outside the calls, in the window (the rest is untraced Python).
    inside = [(call.start, call.end) for call in calls]
    python_self = collections.Counter()
    for event, self_ps in self_times(python_line[1]):
        if not window[0] <= event.start < window[1] or TRAIN_CALL.match(event.name):
            continue
        if any(start <= event.start < end for start, end in inside):
            continue
        python_self[event.name] += self_ps
    traced_python_ps = sum(python_self.values())

    input_ps = 0
    for line_name, events in lines:
        if line_name.startswith(INPUT_LINE_PREFIX):
            input_ps += sum(self_ps for event, self_ps in self_times(events) if window[0] <= event.start < window[1])

    # The rest of the compute threads' time: TensorFlow's executor and XLA's runtime around the ops
    # (a thread waiting for XLA's thunks on other threads shows as `BlockUntilReady`).
    runtime_self = collections.Counter()
    for line_name, events in lines:
        if line_name.startswith(INPUT_LINE_PREFIX) or line_name == python_line[0]:
            continue
        for event, self_ps in self_times(events):
            if window[0] <= event.start < window[1] and "hlo_op" not in event.stats and not TF_OP.match(event.name):
                runtime_self[event.name] += self_ps

    rows = collect_ops(lines, window, hlo_index)
    op_ps = sum(row["self_ps"] for row in rows.values())

    def share(ps):
        return ps / op_ps if op_ps else 0.0

    ranked = sorted(rows.values(), key=lambda row: row["self_ps"], reverse=True)
    ops = []
    for row in ranked[:top]:
        ops.append({"name": row["name"], "type": row["type"], "kind": row["kind"], "tf_op_name": row["tf_op_name"],
                    "holds": row["holds"], "ms_per_step": per_step(row["self_ps"]), "share": share(row["self_ps"]),
                    "calls_per_step": row["count"] / steps, "attack": row["attack"], "random": row["random"]})
    rest = ranked[top:]
    if rest:
        rest_ps = sum(row["self_ps"] for row in rest)
        ops.append({"name": f"{OTHER[:-1]}: {len(rest)})", "type": "", "kind": "", "tf_op_name": None,
                    "holds": None, "ms_per_step": per_step(rest_ps), "share": share(rest_ps),
                    "calls_per_step": sum(row["count"] for row in rest) / steps,
                    "attack": None, "random": None})

    by_type = collections.Counter()
    for row in rows.values():
        by_type[(row["kind"], row["type"])] += row["self_ps"]
    op_types = [{"type": op_type, "kind": kind, "ms_per_step": per_step(ps), "share": share(ps)}
                for (kind, op_type), ps in by_type.most_common(top)]
    if len(by_type) > top:
        rest_ps = sum(ps for _, ps in by_type.most_common()[top:])
        op_types.append({"type": f"{OTHER[:-1]}: {len(by_type) - top} types)", "kind": "",
                         "ms_per_step": per_step(rest_ps), "share": share(rest_ps)})

    attack_ps = sum(row["self_ps"] for row in rows.values() if row["attack"])
    attack = None
    if attack_ps:
        target_ps = sum(row["self_ps"] for row in rows.values() if row["attack_target"])
        attack = {"ms_per_step": per_step(attack_ps), "share": share(attack_ps),
                  "target_ms_per_step": per_step(target_ps), "target_share": share(target_ps),
                  "pgd_ms_per_step": per_step(attack_ps - target_ps), "pgd_share": share(attack_ps - target_ps),
                  "rest_ms_per_step": per_step(op_ps - attack_ps), "rest_share": share(op_ps - attack_ps)}
    random_ps = sum(row["self_ps"] for row in rows.values() if row["random"])

    summary = {
        "steps": steps,
        "calls": len(calls),
        "window_ms_per_step": per_step(window_ps),
        "function_ms_per_step": per_step(function_ps),
        "python_ms_per_step": per_step(python_ps),
        "graph_ms_per_step": per_step(graph_ps),
        "xla_ms_per_step": per_step(xla_ps),
        "wall_shares": {
            "python": python_ps / window_ps if window_ps else 0.0,
            "graph": graph_ps / window_ps if window_ps else 0.0,
            "xla": xla_ps / window_ps if window_ps else 0.0,
        },
        "traced_python_ms_per_step": per_step(traced_python_ps),
        "python_events": [{"name": name, "ms_per_step": per_step(ps)} for name, ps in python_self.most_common(5)],
        "runtime_events": [{"name": name, "ms_per_step": per_step(ps)} for name, ps in runtime_self.most_common(5)],
        "input_pipeline_ms_per_step": per_step(input_ps),
        "op_ms_per_step": per_step(op_ps),
        "ops": ops,
        "op_types": op_types,
        "attack": attack,
        "random": {"ms_per_step": per_step(random_ps), "share": share(random_ps)},
        "hlo_named": bool(hlo_index),
    }
    if epoch_seconds is not None:
        summary["epoch_ms"] = 1e3 * epoch_seconds
        summary["epoch_overhead_ms"] = max(1e3 * epoch_seconds - window_ps / PS_PER_MS, 0.0)
    return summary


# ------------------------------------------------------------------ running


class Case:
    """One model, compiled at the library's defaults, trained by `fit` on in-memory random images.

    `data` is a NumPy array of images (passed as `fit(x, batch_size=...)`, as the README and
    benchmarks/peer.py do: checked whole before training) or a `tf.data.Dataset` of batches
    (checked batch by batch by a map of the input pipeline, as benchmarks/train_step.py feeds it).
    """

    def __init__(self, name, batch_size, data):
        arch, self.kind, factory = CASES[name]
        self.name, self.arch = name, arch
        self.model = factory(ARCHITECTURES[arch](latent_dim=LATENT_DIM, input_shape=IMAGE_SHAPE))
        self.model.build((batch_size,) + IMAGE_SHAPE)
        self.model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
        self.data, self.batch_size = data, batch_size
        self.seconds = []
        self.trace = None

    def run(self, steps):
        """Seconds of one epoch of `steps` steps, from its start to its end."""
        timer = EpochTimer()
        kwargs = {"epochs": 1, "steps_per_epoch": steps, "verbose": 0, "callbacks": [timer]}
        if isinstance(self.data, tf.data.Dataset):
            self.model.fit(self.data, shuffle=False, **kwargs)  # `shuffle` does nothing to a dataset
        else:
            self.model.fit(self.data, batch_size=self.batch_size, **kwargs)
        return timer.elapsed[0]

    def describe(self):
        model = self.model
        described = {"case": self.name, "arch": self.arch, "model": type(model).__name__,
                     "jit_compile": bool(model.jit_compile), "steps_per_execution": model.steps_per_execution}
        for name in ("delusion", "posterior_sampling", "epsilon", "train_attack_steps", "attack_mode"):
            if hasattr(model, name):
                described[name] = getattr(model, name)
        return described


def steps_for(args, arch):
    return args.steps or DEFAULT_STEPS[arch]


def profile(case, steps, logdir, top=DEFAULT_TOP):
    """One epoch of `steps` steps under the profiler; its trace, summarised."""
    case_dir = os.path.join(logdir, case.name)
    tf.profiler.experimental.start(case_dir)
    try:
        seconds = case.run(steps)
    finally:
        tf.profiler.experimental.stop()
    return summarise_trace(read_xspace(case_dir), steps, read_hlo(logdir), top=top, epoch_seconds=seconds)


def ratios(cases):
    """Per architecture, each model's step time over the VAE's: untraced, and inside the train function."""
    result = {}
    for case in cases:
        vae = next((other for other in cases if other.arch == case.arch and other.kind == "vae"), None)
        if vae is None or case.kind == "vae":
            continue
        result[case.name] = {
            "over": vae.name,
            "untraced": statistics.median(case.seconds) / statistics.median(vae.seconds),
            "in_function": case.trace["function_ms_per_step"] / vae.trace["function_ms_per_step"],
            "paper": PAPER_TIME.get(case.kind) if case.arch == "conv" else None,
        }
    return result


# ------------------------------------------------------- the delusion's noise

NOISE_CALLS = 20
"""Draws per timed block of `time_noise`."""
NOISE_ALGORITHMS = ("philox", "threefry", "auto_select", "keras.random.normal")
"""The draws `time_noise` compares: `tf.random.stateless_normal` with each `alg` (the models use
`keras_avae.models.sampling.RANDOM_ALGORITHM`), and `keras.random.normal` (Keras' TensorFlow backend calls
`stateless_normal` with the default `alg`). TensorFlow's kernel without XLA has no ThreeFry."""


def noise_functions(shape, jit_compile):
    """`{name: f(x) = x + sqrt(v) * eps}` with eps ~ N(0, I) of `shape`, drawn each call from a seed generator.

    This is the sampled delusion's draw (`VAE.sample_observation`) alone; "none" adds nothing, the baseline.
    """
    generator = keras.random.SeedGenerator(SEED)
    scale = 0.5**0.5

    def draw(name):
        if name == "none":
            return lambda: tf.zeros(shape)
        if name == "keras.random.normal":
            return lambda: keras.random.normal(shape, seed=generator)
        return lambda: tf.random.stateless_normal(shape, seed=generator.next(), alg=name)

    functions = {}
    for name in ("none",) + NOISE_ALGORITHMS:
        if name == "threefry" and not jit_compile:
            continue
        sample = draw(name)
        functions[name] = tf.function(lambda x, sample=sample: x + scale * sample(), jit_compile=jit_compile)
    return functions


def jax_noise_function(shape):
    """The same draw in JAX (`jax.random.normal`, jitted), if JAX is installed: what the authors' framework pays."""
    try:
        import jax
    except ImportError:
        return None
    scale = 0.5**0.5

    @jax.jit
    def step(key, x):
        key, subkey = jax.random.split(key)
        return key, x + scale * jax.random.normal(subkey, shape)

    state = {"key": jax.random.key(SEED)}

    def call(x):
        state["key"], y = step(state["key"], x)
        return y

    return call, jax


def time_noise(batch_size, repeats, calls=NOISE_CALLS):
    """Wall and process CPU ms per draw of the image-sized noise, each way, median and best of `repeats` blocks."""
    shape = (batch_size,) + IMAGE_SHAPE
    x = tf.random.stateless_uniform(shape, seed=(SEED, 1))
    runners = {}
    for jit_compile in (True, False):
        for name, function in noise_functions(shape, jit_compile).items():
            function(x).numpy()  # traces and compiles
            runners[(name, "xla" if jit_compile else "graph")] = (lambda f=function: f(x), lambda y: y.numpy())
    jax_runner = jax_noise_function(shape)
    if jax_runner:
        call, jax = jax_runner
        x_jax = jax.numpy.asarray(x.numpy())
        call(x_jax).block_until_ready()
        runners[("jax.random.normal", "jax jit")] = (lambda: call(x_jax), lambda y: y.block_until_ready())
    wall, cpu = collections.defaultdict(list), collections.defaultdict(list)
    keys = list(runners)
    for repeat in range(repeats):
        shift = repeat % len(keys)
        for key in keys[shift:] + keys[:shift]:
            run, finish = runners[key]
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                y = run()
            finish(y)
            wall[key].append(1e3 * (time.perf_counter() - start_wall) / calls)
            cpu[key].append(1e3 * (time.process_time() - start_cpu) / calls)
    return [{"draw": name, "compiled": compiled, "shape": list(shape),
             "wall_ms": statistics.median(wall[(name, compiled)]), "best_wall_ms": min(wall[(name, compiled)]),
             "cpu_ms": statistics.median(cpu[(name, compiled)])} for name, compiled in keys]


def print_noise(rows):
    shape = tuple(rows[0]["shape"])
    print(f"\nthe sampled delusion's draw alone, x + sqrt(v) eps with eps ~ N(0, I) of shape {shape}, "
          "ms per draw (median; best; process CPU):")
    baseline = {row["compiled"]: row["wall_ms"] for row in rows if row["draw"] == "none"}
    for row in rows:
        over = baseline.get(row["compiled"])
        extra = f"  (+{row['wall_ms'] - over:.3f} over none)" if over is not None and row["draw"] != "none" else ""
        print(f"   {row['draw']:<20} {row['compiled']:<8} {row['wall_ms']:8.3f} {row['best_wall_ms']:8.3f} "
              f"{row['cpu_ms']:8.3f}{extra}")


# ---------------------------------------------------------------- printing


def _short(name, width):
    return name if len(name) <= width else "..." + name[-(width - 3):]


def print_case(case, described, steps):
    trace = case.trace
    untraced = 1e3 * statistics.median(case.seconds) / steps
    print(f"\n== {case.name}: {described['model']}, jit_compile={described['jit_compile']}, "
          f"steps_per_execution={described['steps_per_execution']}, {steps} steps")
    print(f"   untraced {untraced:.2f} ms/step (median of {len(case.seconds)}); traced epoch "
          f"{trace['epoch_ms'] / steps:.2f} ms/step, of which the profiled window {trace['window_ms_per_step']:.2f} "
          f"and {trace['epoch_overhead_ms']:.1f} ms once per epoch outside it")
    shares = trace["wall_shares"]
    print(f"   window per step: python {trace['python_ms_per_step']:.2f} ms ({shares['python']:.0%}), "
          f"TF executor {trace['graph_ms_per_step']:.2f} ms ({shares['graph']:.0%}), "
          f"XLA {trace['xla_ms_per_step']:.2f} ms ({shares['xla']:.0%}); input pipeline (its own threads) "
          f"{trace['input_pipeline_ms_per_step']:.2f} ms")
    if trace["python_events"]:
        events = ", ".join(f"{event['name']} {event['ms_per_step']:.3f}" for event in trace["python_events"][:3])
        print(f"   traced on the Python thread outside the calls, ms/step: {events}")
    runtime = ", ".join(f"{event['name']} {event['ms_per_step']:.3f}" for event in trace["runtime_events"][:4])
    print(f"   executor and XLA runtime on the compute threads, self ms/step: {runtime}")
    named = " (named from the HLO dump)" if trace["hlo_named"] else ""
    print(f"   ops: {trace['op_ms_per_step']:.2f} ms/step of op self time{named}")
    print(f"   {'ms/step':>8} {'share':>6}  {'kind':<4} {'type':<32} name")
    for op in trace["ops"]:
        flags = (" [attack]" if op["attack"] else "") + (" [random]" if op["random"] else "")
        name = op["name"] + (f" <- {op['tf_op_name']}" if op.get("tf_op_name") else "")
        if op.get("holds") and op["holds"] != [op["type"]]:
            name += f" (holds {', '.join(op['holds'])})"
        print(f"   {op['ms_per_step']:8.3f} {op['share']:6.1%}  {op['kind']:<4} {_short(op['type'], 32):<32} "
              f"{_short(name, 90)}{flags}")
    types = ", ".join(f"{t['type']} {t['share']:.0%}" for t in trace["op_types"][:6])
    print(f"   by type: {types}")
    if trace["attack"]:
        attack = trace["attack"]
        print(f"   attack ({ATTACK_NAME_SCOPE}): {attack['ms_per_step']:.2f} ms/step, {attack['share']:.0%} of op time "
              f"(target encoding {attack['target_share']:.0%}, PGD steps {attack['pgd_share']:.0%}); "
              f"the rest of the step {attack['rest_share']:.0%}")
    random = trace["random"]
    print(f"   random draws (ops holding one): {random['ms_per_step']:.3f} ms/step, {random['share']:.1%} of op time")


def print_ratios(result):
    if not result:
        return
    print("\nstep time over the VAE's (same architecture); paper: " + PAPER_NOTE)
    print(f"   {'case':<16} {'untraced':>9} {'in function':>12} {'paper':>6}")
    for name, row in result.items():
        paper = f"x{row['paper']:g}" if row["paper"] else "-"
        print(f"   {name:<16} {row['untraced']:8.2f}x {row['in_function']:11.2f}x {paper:>6}")


# ---------------------------------------------------------------------- main




def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=names(tuple(CASES), allow_none=True), default=tuple(CASES),
                        help="comma-separated, from " + ",".join(CASES) + "; or none (with --noise)")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help=f"steps per epoch, untraced and traced (default {DEFAULT_STEPS})")
    parser.add_argument("--repeats", type=positive_int, default=DEFAULT_REPEATS,
                        help="untraced epochs per case; the median is reported")
    parser.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--data", choices=("array", "dataset"), default="array",
                        help="feed `fit` a NumPy array (checked whole, as the README does) or a tf.data.Dataset "
                        "(checked batch by batch in the input pipeline)")
    parser.add_argument("--top", type=positive_int, default=DEFAULT_TOP, help="ops and op types listed per case")
    parser.add_argument("--logdir", default=None,
                        help="keep the traces (and the HLO dump) here, for TensorBoard or xprof; default: "
                        "a temporary directory, deleted at the end")
    parser.add_argument("--noise", action="store_true",
                        help="also time the sampled delusion's image-sized N(0, I) draw alone, each way (XLA, graph, "
                        "JAX if installed), --repeats blocks of 20 draws")
    parser.add_argument("--json", metavar="PATH", help="also write the results here")
    args = parser.parse_args(argv)
    if not args.cases and not args.noise:
        parser.error("--cases none leaves nothing to do without --noise")
    return args


def make_data(args):
    """What `fit` reads: a NumPy array with enough images for the longest case's epoch, or a dataset."""
    if args.data == "dataset":
        return make_dataset(args.batch_size)
    images = max((steps_for(args, CASES[name][0]) for name in args.cases), default=1) * args.batch_size
    return np.random.default_rng(SEED).random((images,) + IMAGE_SHAPE, dtype=np.float32)


def build_cases(args, data):
    """Every case, built, compiled and run twice (tracing, compiling) before any timing."""
    cases = []
    for name in args.cases:
        case = Case(name, args.batch_size, data)
        steps = steps_for(args, case.arch)
        first = time.perf_counter()
        # With the steps per execution the timed epochs get (`Compilation._steps_per_execution_for`).
        case.run(math.gcd(case.model.steps_per_execution, steps))
        case.run(math.gcd(case.model.steps_per_execution, steps))
        print(f"  built {name:<16} jit_compile={bool(case.model.jit_compile)!s:<5} "
              f"first calls {time.perf_counter() - first:.1f} s", flush=True)
        cases.append(case)
    return cases


def measure(cases, args):
    """`--repeats` untraced epochs of every case, in an order rotated by one each repeat."""
    for repeat in range(args.repeats):
        shift = repeat % len(cases)
        for case in cases[shift:] + cases[:shift]:
            case.seconds.append(case.run(steps_for(args, case.arch)))
        print(f"  repeat {repeat + 1}/{args.repeats} done", flush=True)


def main(argv=None):
    args = parse_args(argv)
    logdir = globals().get("LOGDIR") or args.logdir or tempfile.mkdtemp(prefix="profile_step_")
    if XLA_TRACE_FLAG not in os.environ.get("XLA_FLAGS", ""):
        print("note: XLA_FLAGS lacks the per-thunk trace flag (imported, not run as a script): "
              "a compiled step shows as one event")
    keras.utils.set_random_seed(SEED)
    env = environment()
    print(f"profile_step: TensorFlow {env['tensorflow']}, Keras {env['keras']}, {env['cpu_count']} CPUs, "
          f"batch {args.batch_size}, data as {args.data}, repeats {args.repeats}, logdir {logdir}", flush=True)
    started = time.perf_counter()
    cases = build_cases(args, make_data(args)) if args.cases else []
    if cases:
        measure(cases, args)
    results = []
    for case in cases:
        steps = steps_for(args, case.arch)
        case.trace = profile(case, steps, logdir, args.top)
        described = case.describe()
        print_case(case, described, steps)
        results.append({**described, "steps": steps, "batch_size": args.batch_size,
                        "untraced_ms_per_step": 1e3 * statistics.median(case.seconds) / steps,
                        "untraced_repeat_ms_per_step": [1e3 * s / steps for s in case.seconds],
                        "trace": case.trace})
    result_ratios = ratios(cases)
    print_ratios(result_ratios)
    noise = time_noise(args.batch_size, args.repeats) if args.noise else None
    if noise:
        print_noise(noise)
    total_s = time.perf_counter() - started
    print(f"\ntotal {total_s:.0f} s")
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"environment": env, "args": vars(args), "xla_flags": os.environ.get("XLA_FLAGS", ""),
                       "paper": {"time": PAPER_TIME, "note": PAPER_NOTE}, "total_s": total_s,
                       "cases": results, "ratios": result_ratios, "noise": noise}, file, indent=2)
    if args.logdir is None:
        shutil.rmtree(logdir, ignore_errors=True)
    return {"cases": results, "ratios": result_ratios, "noise": noise}


if __name__ == "__main__":
    main()
