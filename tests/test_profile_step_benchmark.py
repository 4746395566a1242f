"""Tests for benchmarks/profile_step.py: the trace summary on hand-made traces, the HLO names, and a tiny run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tensorflow.tsl.profiler.protobuf import xplane_pb2

from conftest import load_benchmark

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "profile_step.py"
PS_PER_MS = 10**9


profile_step = load_benchmark("profile_step")

CALL = "EagerLocalExecute: __inference_multi_step_on_iterator_7"
PREFIX = "while/body/_1/while/cond/then/_9/while/cond/StatefulPartitionedCall/"


def make_xspace(lines):
    """An XSpace with one host plane: `{thread: [(event, start ms, duration ms, {stat: value})]}`."""
    space = xplane_pb2.XSpace()
    plane = space.planes.add()
    plane.name = "/host:CPU"
    events, stats = {}, {}

    def metadata_id(table, ids, name):
        if name not in ids:
            ids[name] = len(ids) + 1
            table[ids[name]].id = ids[name]
            table[ids[name]].name = name
        return ids[name]

    for line_id, (line_name, line_events) in enumerate(lines.items()):
        line = plane.lines.add()
        line.id, line.name, line.timestamp_ns = line_id, line_name, 5
        for name, start, duration, event_stats in line_events:
            event = line.events.add()
            event.metadata_id = metadata_id(plane.event_metadata, events, name)
            event.offset_ps, event.duration_ps = int(start * PS_PER_MS), int(duration * PS_PER_MS)
            for key, value in event_stats.items():
                stat = event.stats.add()
                stat.metadata_id = metadata_id(plane.stat_metadata, stats, key)
                stat.str_value = value
    return space


def test_self_time_is_the_duration_less_the_nested_events():
    Event = profile_step.Event
    outer, inner, after = Event("a", 0, 10, {}), Event("b", 2, 3, {}), Event("c", 10, 4, {})
    assert [(event.name, ps) for event, ps in profile_step.self_times([outer, inner, after])] == [
        ("a", 7), ("b", 3), ("c", 4)
    ]


def test_a_graph_step_is_split_into_python_and_ops_whose_shares_sum_to_one():
    space = make_xspace({
        "python": [
            (CALL, 0, 10, {}),
            ("TFE_Py_FastPathExecute_C", 10.5, 1, {}),
            (CALL, 12, 10, {}),
        ],
        "tf_Compute/1": [
            ("ExecutorState::Process", 0, 10, {}),
            (PREFIX[:-1] + ":StatefulPartitionedCall", 0.5, 0.3, {}),  # runs a function: left out
            (PREFIX + "encoder/MatMul:MatMul", 1, 3, {}),
            (PREFIX + "encoder/Relu:Relu", 2, 1, {}),  # nested in the MatMul's event
            (PREFIX + "representation_attack/target/encoder/MatMul:MatMul", 4, 2, {}),
            (PREFIX + "representation_attack/StatefulPartitionedCall_1/gradient_tape/encoder/MatMul:MatMul", 6, 3, {}),
            (PREFIX + "stateless_random_normal/StatelessRandomNormalV2:StatelessRandomNormalV2", 9, 0.5, {}),
            (PREFIX + "encoder/MatMul:MatMul", 13, 3, {}),
            (PREFIX + "encoder/MatMul:MatMul", 30, 3, {}),  # after the window
        ],
        "tf_data_iterator/2": [("PyFunc:PyFunc", 5, 1, {})],
    })
    summary = profile_step.summarise_trace(space, steps=2, top=3, epoch_seconds=0.030)
    assert summary["calls"] == 2
    assert summary["window_ms_per_step"] == pytest.approx(11.0)
    assert summary["python_ms_per_step"] == pytest.approx(1.0)
    assert summary["graph_ms_per_step"] == pytest.approx(10.0) and summary["xla_ms_per_step"] == 0
    assert sum(summary["wall_shares"].values()) == pytest.approx(1.0)
    assert summary["wall_shares"]["python"] == pytest.approx(2 / 22)
    assert summary["epoch_overhead_ms"] == pytest.approx(8.0)
    assert summary["python_events"] == [{"name": "TFE_Py_FastPathExecute_C", "ms_per_step": pytest.approx(0.5)}]
    assert summary["input_pipeline_ms_per_step"] == pytest.approx(0.5)
    # Op self times: MatMul 2 + 3, Relu 1, the attack's target 2 and PGD step 3, the draw 0.5: 11.5 ms.
    assert summary["op_ms_per_step"] == pytest.approx(11.5 / 2)
    ops = summary["ops"]
    assert [op["name"] for op in ops[:3]] == [
        "encoder/MatMul",
        "representation_attack/StatefulPartitionedCall_1/gradient_tape/encoder/MatMul",
        "representation_attack/target/encoder/MatMul",
    ]
    assert ops[0]["ms_per_step"] == pytest.approx(2.5) and ops[0]["calls_per_step"] == 1
    assert ops[-1]["name"].startswith("(other ops: 2")
    assert sum(op["share"] for op in ops) == pytest.approx(1.0)
    assert sum(op["share"] for op in summary["op_types"]) == pytest.approx(1.0)
    assert summary["op_types"][0] == {"type": "MatMul", "kind": "tf", "ms_per_step": pytest.approx(5.0),
                                      "share": pytest.approx(10 / 11.5)}
    attack = summary["attack"]
    assert attack["share"] == pytest.approx(5 / 11.5)
    assert attack["target_share"] == pytest.approx(2 / 11.5) and attack["pgd_share"] == pytest.approx(3 / 11.5)
    assert attack["share"] + attack["rest_share"] == pytest.approx(1.0)
    assert summary["random"]["share"] == pytest.approx(0.5 / 11.5)


HLO = """HloModule a_inference_one_step_on_data_1__.3, entry_computation_layout={(f32[4]{0})->f32[4]{0}}

%fused_computation (param_0: f32[4]) -> f32[4] {
  %param_0 = f32[4]{0} parameter(0)
  %erf-inv.1 = f32[4]{0} erf-inv(f32[4]{0} %param_0), metadata={op_type="StatelessRandomNormalV2" op_name="stateless_random_normal/StatelessRandomNormalV2"}
  %multiply.2 = f32[4]{0} multiply(f32[4]{0} %erf-inv.1, f32[4]{0} %erf-inv.1), metadata={op_type="StatelessRandomNormalV2" op_name="stateless_random_normal/StatelessRandomNormalV2"}
  ROOT %add.3 = f32[4]{0} add(f32[4]{0} %multiply.2, f32[4]{0} %param_0), metadata={op_type="AddV2" op_name="add_3"}
}

%fused_computation.1 (param_0.1: u32[4]) -> u32[4] {
  %param_0.1 = u32[4]{0} parameter(0)
  ROOT %xor.1 = u32[4]{0} xor(u32[4]{0} %param_0.1, u32[4]{0} %param_0.1), metadata={op_name="stateless_random_normal/StatelessRandomNormalV2"}
}

ENTRY %main.9 (p: f32[4]) -> f32[4] {
  %p = f32[4]{0} parameter(0)
  %bits_fusion = u32[4]{0} fusion(u32[4]{0} %p), kind=kLoop, calls=%fused_computation.1, metadata={op_name="stateless_random_normal/StatelessRandomNormalV2"}
  %add_bitcast_fusion = f32[4]{0} fusion(f32[4]{0} %p), kind=kLoop, calls=%fused_computation, metadata={op_type="AddV2" op_name="add_3"}
  ROOT %MatMul.3 = f32[4]{0} dot(f32[4]{0} %add_bitcast_fusion, f32[4]{0} %p), metadata={op_type="MatMul" op_name="representation_attack/encoder/MatMul"}
}
"""
MODULE = "a_inference_one_step_on_data_1__.3"


def test_hlo_instructions_are_named_by_the_tensorflow_ops_they_hold():
    module, ops = profile_step.parse_hlo_module(HLO)
    assert module == MODULE
    fusion = ops["add_bitcast_fusion"]
    assert (fusion.op_type, fusion.op_name) == ("AddV2", "add_3")
    assert fusion.main_types() == ["StatelessRandomNormalV2", "AddV2"]
    assert fusion.fraction(profile_step.is_random) == pytest.approx(2 / 3)
    # A fusion whose metadata has a name only: no op type to read.
    assert ops["bits_fusion"].op_name == "stateless_random_normal/StatelessRandomNormalV2"
    assert ops["bits_fusion"].fraction(profile_step.is_random) == 1.0
    assert ops["MatMul.3"].op_type == "MatMul"


def test_an_xla_step_is_split_into_its_thunks_named_from_the_hlo():
    thunk = {"hlo_module": MODULE}
    space = make_xspace({
        "python": [(CALL, 0, 10, {})],
        "tf_Compute/1": [
            ("ExecutorState::Process", 0, 10, {}),
            (PREFIX + "step:CompiledStep", 1, 8.5, {}),  # holds the XLA execution: its time is the thunks'
            (profile_step.XLA_EXECUTION, 1, 8, {}),
            ("BlockUntilReady", 2, 6, {}),
        ],
        "tf_numa_-1_Eigen/3": [
            ("ThunkExecutor::Execute", 1.5, 7, {}),
            ("add_bitcast_fusion", 2, 3, {"hlo_op": "add_bitcast_fusion", **thunk}),
            ("MatMul.3", 5, 2, {"hlo_op": "MatMul.3", **thunk}),
            ("bits_fusion", 7, 1, {"hlo_op": "bits_fusion", **thunk}),
        ],
    })
    summary = profile_step.summarise_trace(space, steps=1, hlo_index=dict([profile_step.parse_hlo_module(HLO)]))
    assert summary["xla_ms_per_step"] == pytest.approx(8.0) and summary["graph_ms_per_step"] == pytest.approx(2.0)
    assert summary["wall_shares"] == {"python": 0.0, "graph": pytest.approx(0.2), "xla": pytest.approx(0.8)}
    assert summary["op_ms_per_step"] == pytest.approx(6.0)
    first = summary["ops"][0]
    assert (first["name"], first["type"], first["tf_op_name"], first["random"]) == (
        "add_bitcast_fusion", "AddV2", "add_3", True
    )
    assert summary["ops"][2]["type"] == profile_step.NO_OP_TYPE
    assert summary["random"]["share"] == pytest.approx(4 / 6)
    assert summary["attack"]["share"] == pytest.approx(2 / 6) and summary["attack"]["target_share"] == 0
    assert {event["name"] for event in summary["runtime_events"]} >= {"ThunkExecutor::Execute", "BlockUntilReady"}
    assert summary["hlo_named"]


def test_a_trace_without_the_train_function_is_refused():
    with pytest.raises(ValueError, match="no call of Keras' train function"):
        profile_step.summarise_trace(make_xspace({"python": [("something", 0, 1, {})]}), steps=1)


def test_the_cases_are_chosen_on_the_command_line():
    assert profile_step.parse_args(["--cases", "conv_se,mlp_vae"]).cases == ("conv_se", "mlp_vae")
    assert profile_step.parse_args(["--cases", "none", "--noise"]).cases == ()
    for argv in (["--cases", "conv_xx"], ["--cases", "none"]):
        with pytest.raises(SystemExit):
            profile_step.parse_args(argv)


def test_the_models_are_the_library_defaults_and_the_authors_choices():
    import keras_avae
    from conftest import tiny_networks
    from keras_avae.models.smooth_encoder import DEFAULT_TRAIN_ATTACK_STEPS

    se = profile_step.CASES["conv_se"][2](tiny_networks())
    assert se.train_attack_steps == DEFAULT_TRAIN_ATTACK_STEPS == 5
    theirs = profile_step.CASES["mlp_avae_theirs"][2](tiny_networks())
    assert (theirs.delusion, theirs.posterior_sampling) == ("mean", "variance")
    default = profile_step.CASES["mlp_avae"][2](tiny_networks())
    assert default.delusion == keras_avae.AVAE(*tiny_networks()).delusion


@pytest.mark.large
def test_a_tiny_run_profiles_every_kind_of_step(tmp_path):
    """The script as it is run, on two steps of an XLA step (MLP) and of a graph step with an attack (conv SE)."""
    output = tmp_path / "profile.json"
    command = [sys.executable, str(SCRIPT), "--cases", "mlp_vae,conv_se", "--steps", "2", "--repeats", "1",
               "--batch-size", "4", "--top", "5", "--noise", "--logdir", str(tmp_path / "logs"), "--json", str(output)]
    environment = {**os.environ, "PYTHONPATH": str(SCRIPT.parents[1])}
    completed = subprocess.run(command, capture_output=True, text=True, timeout=900, env=environment)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    result = json.loads(output.read_text())
    cases = {case["case"]: case for case in result["cases"]}
    assert set(cases) == {"mlp_vae", "conv_se"}
    assert cases["mlp_vae"]["jit_compile"] and not cases["conv_se"]["jit_compile"]
    for case in cases.values():
        trace = case["trace"]
        assert sum(trace["wall_shares"].values()) == pytest.approx(1.0)
        assert sum(op["share"] for op in trace["ops"]) == pytest.approx(1.0)
        assert sum(op["share"] for op in trace["op_types"]) == pytest.approx(1.0)
        assert trace["op_ms_per_step"] > 0 and case["untraced_ms_per_step"] > 0
    assert cases["mlp_vae"]["trace"]["xla_ms_per_step"] > 0 and cases["mlp_vae"]["trace"]["hlo_named"]
    assert any(op["kind"] == "xla" for op in cases["mlp_vae"]["trace"]["ops"])
    assert cases["mlp_vae"]["trace"]["random"]["ms_per_step"] > 0  # z's noise
    attack = cases["conv_se"]["trace"]["attack"]
    assert 0 < attack["share"] < 1 and 0 < attack["target_share"] < attack["share"]
    assert cases["conv_se"]["train_attack_steps"] == 5
    assert result["ratios"] == {}  # no VAE of the SE's architecture among the cases
    assert {row["draw"] for row in result["noise"]} >= {"none", "philox", "threefry", "keras.random.normal"}
