"""Tests for keras_avae/experiments/settings.py, fields.py and the budget of scale.py: typed settings,
checked where they are defined, with the command line generated from them."""

import dataclasses
import json

import numpy as np
import pytest

from keras_avae import cli
from keras_avae.experiments import settings
from keras_avae.experiments.scale import BUDGET_FIELDS, TABLE1_SCALES, TRAIN_SCALES, Budget

COMMAND_CLASSES = (
    settings.TrainSettings,
    settings.EvaluateSettings,
    settings.Table1Settings,
    settings.AblationSettings,
    settings.RhoSweepSettings,
    settings.CelebASettings,
)


@pytest.mark.parametrize("cls", (settings.RunConfig, *COMMAND_CLASSES), ids=lambda cls: cls.__name__)
def test_every_field_has_a_kind_and_help_and_the_defaults_pass_their_checks(cls):
    for field in dataclasses.fields(cls):
        assert field.metadata.get("help") and field.metadata.get("kind"), field.name
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    required = {"model_path": "m.keras"} if cls is settings.EvaluateSettings else {}
    instance = cls(**required)  # the defaults are valid values
    with pytest.raises(dataclasses.FrozenInstanceError):
        instance.seed = 1


BAD = [
    (settings.TrainSettings, {"epochs": 0}, "`epochs` must be an integer >= 1. Received: epochs=0"),
    (settings.TrainSettings, {"epochs": 2.7}, "`epochs` must be an integer >= 1"),
    (settings.TrainSettings, {"batch_size": "3"}, "`batch_size` must be an integer >= 1"),
    (settings.TrainSettings, {"rho": 1.0}, "`rho` must be a number in (-1, 1)"),
    (settings.TrainSettings, {"learning_rate": 0}, "`learning_rate` must be a finite number > 0"),
    (settings.TrainSettings, {"se_epsilon": -0.1}, "`se_epsilon` must be a finite number >= 0"),
    (settings.TrainSettings, {"seed": -5}, "`seed` must be an integer >= 0"),
    (settings.TrainSettings, {"verbose": 3}, "`verbose` must be one of (0, 1, 2)"),
    (settings.TrainSettings, {"model": "gan"}, "`model` must be one of"),
    (settings.TrainSettings, {"scale": "huge"}, "`scale` must be one of ('tiny', 'small', 'medium', 'paper')"),
    (settings.TrainSettings, {"delusion": "median"}, "`delusion` must be one of ('mean', 'sample')"),
    (settings.TrainSettings, {"epsilons": "0,-1"}, "`epsilons` must be finite numbers >= 0"),
    (settings.TrainSettings, {"attacks": "fgsm"}, "`attacks` must list attack names from"),
    (settings.TrainSettings, {"losses": ["hinge"]}, "`losses` must list loss names from"),
    (settings.TrainSettings, {"figures": "yes"}, "`figures` must be True or False"),
    (settings.TrainSettings, {"pretrained": "v.keras"}, "`pretrained` is only for model='avae_ss'"),
    (settings.TrainSettings, {"fid_extractor": "a", "inception_weights": "b"}, "either `inception_weights`"),
    (settings.TrainSettings, {"epoch": 3}, "Unknown settings ['epoch']"),
    (settings.TrainSettings, {"dtype_policy": "mixed_float16"}, "`dtype_policy` must be one of ('float32', 'mixed_bfloat16')"),
    (settings.Table1Settings, {"arch": "resnet"}, "`arch` must list architectures from mlp, conv"),
    (settings.Table1Settings, {"rows": "VAE,GAN"}, "`rows` must list rows from"),
    (settings.AblationSettings, {"delusion": "sample"}, "Unknown settings ['delusion']"),  # the rows fix it
    (settings.RhoSweepSettings, {"rhos": "0.5,1.5"}, "`rhos` must be numbers in (-1, 1)"),
    (settings.CelebASettings, {"attributes": ["Wings"]}, "`attributes` must list attributes from"),
    (settings.EvaluateSettings, {}, "Give exactly one of `model_path`"),
    (settings.EvaluateSettings, {"model_path": "m", "encoder": "e"}, "Give exactly one of `model_path`"),
    (settings.EvaluateSettings, {"encoder": "e", "data_range": (1, 0)}, "`data_range` must satisfy low < high"),
]


@pytest.mark.parametrize("cls, values, message", BAD, ids=[f"{cls.__name__}-{values}" for cls, values, _ in BAD])
def test_a_bad_setting_is_refused_with_its_name(cls, values, message):
    with pytest.raises(ValueError) as error:
        cls.from_dict(values)
    assert message in str(error.value)


def test_numpy_scalars_and_comma_strings_are_read_as_python_values():
    config = settings.TrainSettings.from_dict(
        {"rho": np.float32(0.9), "obs_var": np.float64(0.5), "epochs": np.int64(3), "epsilons": "0, 0.05", "attacks": "pgd,square"}
    )
    assert (type(config.rho), type(config.obs_var), type(config.epochs)) == (float, float, int)
    assert config.epsilons == (0.0, 0.05) and config.attacks == ("pgd", "square")
    assert settings.Table1Settings.from_dict({"arch": ["conv", "mlp", "conv"]}).arch == ("conv", "mlp")
    assert settings.RhoSweepSettings(rhos=[0.9, 0.5, 0.9]).rhos == (0.5, 0.9)


def test_the_budget_comes_from_the_scale_only_where_unset():
    scale = TABLE1_SCALES["small"]
    budget = Budget(epochs=7, attack_size=3).filled(scale, "conv")
    assert (budget.epochs, budget.attack_size) == (7, 3)
    assert (budget.train_size, budget.test_size, budget.restarts) == (scale.train_size, scale.test_size, scale.restarts)
    assert Budget().filled(scale, "conv").epochs == scale.epochs_for("conv") == 3
    for preset in (*TRAIN_SCALES.values(), *TABLE1_SCALES.values()):  # the presets are budgets, checked alike
        assert isinstance(preset, Budget)
    with pytest.raises(ValueError, match="`batch_size` must be an integer >= 1"):
        dataclasses.replace(TRAIN_SCALES["tiny"], batch_size=0)


def test_a_run_config_is_what_config_json_holds_and_rebuilds_it():
    command = settings.TrainSettings.from_dict({"model": "se", "scale": "tiny", "resume": True}).resolved()
    config = settings.run_config(command)
    record = json.loads(json.dumps(command.record()))
    assert "resume" not in record and "overwrite" not in record
    assert record["epochs"] == 1 and record["out"] == "runs/se_mlp"  # the budget as run, not None
    assert set(BUDGET_FIELDS) <= set(record)
    rebuilt = settings.RunConfig(**{key: value for key, value in record.items() if key in settings.RUN_FIELDS})
    assert rebuilt == config


def test_each_flag_runs_its_fields_check(capsys):
    """The command line and the library refuse a value with the same message: one check."""
    for argv, cls, name, value in (
        (["train", "--epochs", "0"], settings.TrainSettings, "epochs", 0),
        (["train", "--rho", "1"], settings.TrainSettings, "rho", 1.0),
        (["reproduce", "rho-sweep", "--rhos", "0.5,2"], settings.RhoSweepSettings, "rhos", "0.5,2"),
        (["reproduce", "table1", "--arch", "resnet"], settings.Table1Settings, "arch", "resnet"),
    ):
        with pytest.raises(ValueError) as error:
            cls.from_dict({name: value})
        with pytest.raises(SystemExit) as exit_info:
            cli.build_parser().parse_args(argv)
        assert exit_info.value.code == 2
        assert str(error.value) in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--epochs", "three"])
    assert "must be an integer >= 1, got 'three'" in capsys.readouterr().err
    parsed = cli.settings(cli.build_parser().parse_args(["train", "--epochs", "3", "--no-fid", "--delusion", "mean"]))
    assert settings.TrainSettings.from_dict(parsed).pick(("epochs", "fid", "delusion")) == {
        "epochs": 3, "fid": False, "delusion": "mean",
    }


def test_the_dtype_policy_is_a_flag_of_every_command_that_builds_networks():
    """float32 by default; `train` and every `reproduce` command take --dtype-policy and record it."""
    for argv, cls in (
        (["train"], settings.TrainSettings),
        (["reproduce", "table1"], settings.Table1Settings),
        (["reproduce", "ablation"], settings.AblationSettings),
        (["reproduce", "rho-sweep"], settings.RhoSweepSettings),
        (["reproduce", "learning-curve"], settings.LearningCurveSettings),
        (["reproduce", "celeba"], settings.CelebASettings),
    ):
        assert cls().dtype_policy == "float32"
        args = cli.build_parser().parse_args([*argv, "--dtype-policy", "mixed_bfloat16"])
        assert cli.settings(args)["dtype_policy"] == "mixed_bfloat16"
        assert settings.run_config(cls.from_dict(cli.settings(args)), arch="conv").dtype_policy == "mixed_bfloat16"
    assert settings.TrainSettings(dtype_policy="mixed_bfloat16").record()["dtype_policy"] == "mixed_bfloat16"
    assert "dtype_policy" not in settings.EvaluateSettings.field_names()  # a saved model keeps its own
