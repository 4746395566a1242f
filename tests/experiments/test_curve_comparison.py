"""`keras-avae reproduce compare-curves`: learning curves read from their folders (finished or still
running) and drawn side by side, with the paper's values; bad folders and radii named."""

import json

import pytest

from keras_avae import cli, figures
from keras_avae.experiments import curve_comparison, learning_curve, run_directory
from keras_avae.experiments.settings import CurveComparisonSettings, LearningCurveSettings

ATTACK = {"attacks": "pgd", "attack_steps": 20, "restarts": 1}
FULL = {"attacks": "standard", "attack_steps": 40, "restarts": 10}


def _point(epoch, digit, color, attack=ATTACK, per_epoch=100):
    return {
        "epoch": epoch, "steps": epoch * per_epoch, "attack": attack,
        "accuracy": {"digit": {"0": 0.9, "0.1": digit, "0.2": digit / 2}, "color": {"0": 1.0, "0.1": color, "0.2": color / 2}},
    }


def _running_curve(folder, model, arch, points, final=None):
    """A learning curve's folder as a run leaves it while training: config.json and the points so far."""
    settings = LearningCurveSettings(model=model, arch=arch, scale="tiny", out=str(folder)).resolved()
    run_directory.write_json(folder / "config.json", {"settings": settings.record()})
    for point in points:
        run_directory.write_json(learning_curve.point_path(folder, learning_curve.point_name(point["epoch"])), point)
    if final is not None:
        run_directory.write_json(learning_curve.point_path(folder, learning_curve.FINAL), final)
    return folder


def _finished_curve(folder, label, arch, points, final, paper=None):
    run_directory.write_json(
        folder / f"{learning_curve.STEM}.json",
        {"label": label, "arch": arch, "points": points, "final": final, "paper": paper},
    )
    return folder


def test_a_finished_and_a_running_curve_side_by_side(tmp_path):
    avae = _finished_curve(
        tmp_path / "avae", "AVAE", "conv", [_point(5, 0.25, 0.6), _point(10, 0.5, 0.9)], _point(10, 0.45, 0.85, FULL),
        paper=learning_curve.paper_row("conv", "AVAE"),
    )
    vae = _running_curve(tmp_path / "vae", "vae", "conv", [_point(5, 0.02, 0.2)])  # still training: no final
    out = tmp_path / "comparison"

    document = curve_comparison.reproduce({"curves": f"{avae},{vae}", "out": str(out)})

    assert [curve["name"] for curve in document["curves"]] == ["AVAE / conv", "VAE / conv"]
    assert document["curves"][1]["paper"] == learning_curve.paper_row("conv", "VAE")
    markdown = (out / "curve_comparison.md").read_text()
    assert "| model | attack | 500 | 1000 | last, full | paper |" in markdown
    assert "| AVAE / conv | pgd 20x1 | 25.0 | 50.0 | 45.0 (1000 steps) | 88.1 |" in markdown  # digit at 0.1
    assert "| VAE / conv | pgd 20x1 | 2.0 | - | - | 5.8 |" in markdown  # the paper's VAE: 5.8% at 0.1
    assert "| AVAE / conv | pgd 20x1 | 60.0 | 90.0 | 85.0 (1000 steps) | 99.8 |" in markdown  # colour at 0.1
    assert "epsilon 0.2" not in markdown  # only the paper's radius by default
    assert json.loads((out / "curve_comparison.json").read_text())["epsilons"] == [0.1]
    for task in ("digit", "color"):
        assert (out / "figures" / f"curves_{task}_eps0.1.png").stat().st_size > 0


def test_two_curves_of_one_model_are_told_apart_by_their_folders(tmp_path):
    curves = [
        _running_curve(tmp_path / name, "avae", "mlp", [_point(1, 0.1, 0.2)]) for name in ("rho_0.9", "rho_0.975")
    ]
    document = curve_comparison.reproduce(
        {"curves": curves, "epsilons": "0.1,0.2", "out": str(tmp_path / "out"), "figures": False}
    )
    assert [curve["name"] for curve in document["curves"]] == ["AVAE / mlp (rho_0.9)", "AVAE / mlp (rho_0.975)"]
    assert [curve["paper"] for curve in document["curves"]] == [None, None]  # Table 1 is conv only
    assert "## color, epsilon 0.2" in document["markdown"] and not (tmp_path / "out" / "figures").exists()


def test_a_folder_without_a_curve_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'absent'} holds no learning curve"):
        curve_comparison.reproduce({"curves": str(tmp_path / "absent"), "out": str(tmp_path / "out")})


def test_a_curve_without_an_evaluated_checkpoint_is_named(tmp_path):
    folder = _running_curve(tmp_path / "vae", "vae", "conv", [])
    with pytest.raises(ValueError, match="in .*vae has no evaluated checkpoint yet"):
        curve_comparison.reproduce({"curves": str(folder), "out": str(tmp_path / "out")})
    assert not (tmp_path / "out").exists()


def test_a_radius_the_curve_was_not_evaluated_at_is_named(tmp_path):
    folder = _running_curve(tmp_path / "vae", "vae", "conv", [_point(1, 0.1, 0.2)])
    with pytest.raises(ValueError, match=r"not evaluated at epsilon=0.3 \(digit, epoch 1\); its radii are \[0.0, 0.1, 0.2\]"):
        curve_comparison.reproduce({"curves": str(folder), "epsilons": (0.3,), "out": str(tmp_path / "out")})
    assert not (tmp_path / "out").exists()


def test_a_corrupt_point_is_named(tmp_path):
    folder = _running_curve(tmp_path / "vae", "vae", "conv", [_point(1, 0.1, 0.2)])
    learning_curve.point_path(folder, learning_curve.point_name(2)).write_text("{")  # cut short
    with pytest.raises(ValueError, match="in .*vae has a file that is not valid JSON"):
        curve_comparison.reproduce({"curves": str(folder), "out": str(tmp_path / "out")})


@pytest.mark.parametrize("value", [None, "", ",", ()])
def test_curves_are_required(value):
    with pytest.raises(ValueError, match="`curves`"):
        CurveComparisonSettings(curves=value)


def test_the_command_line_maps_onto_the_settings():
    args = cli.build_parser().parse_args(
        ["reproduce", "compare-curves", "--curves", "runs/a,runs/b", "--epsilons", "0.1,0.2", "--out", "fig"]
    )
    settings = args.settings_class.from_dict(cli.settings(args))
    assert (settings.curves, settings.epsilons, settings.out) == (("runs/a", "runs/b"), (0.1, 0.2), "fig")


def test_learning_curves_figure_refuses_no_curves_and_a_missing_radius(tmp_path):
    with pytest.raises(ValueError, match="at least one curve"):
        figures.learning_curves([], "digit", 0.1, tmp_path / "a.png")
    with pytest.raises(ValueError, match="no accuracy at epsilon=0.3"):
        figures.learning_curves([{"name": "VAE", "points": [_point(1, 0.1, 0.2)]}], "digit", 0.3, tmp_path / "a.png")
    assert not (tmp_path / "a.png").exists()
