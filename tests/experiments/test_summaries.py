"""Tests for keras_avae/experiments/summaries.py: summary.md of a run and the extra columns of the tables
(Table 1's layout itself: tests/experiments/test_rows.py)."""

from keras_avae.experiments import summaries
from keras_avae.experiments.settings import CHOICE_NAMES


def _metrics(**changes):
    metrics = {
        "label": "AVAE", "arch": "mlp", "num_train": 100, "num_test": 40, "num_attacked": 20,
        "config": {"epochs": 3, "batch_size": 16, "learning_rate": 0.001, "attacks": "pgd", "attack_steps": 5,
                   "restarts": 2, "losses": ["cross_entropy", "margin"], "square_queries": 10},
        "accuracy": {"digit": {"0": 0.9, "0.1": 0.5}},
        "probe_accuracy": {"digit": 0.9, "color": 1.0},
        "test_reconstruction_mse": 1234.56, "test_reconstruction_nll": 987.65, "test_reconstruction_sse": 12.345,
        "time_factor": 1.25, "fid": 3.14159, "choices": {"coupling": "joint"},
        "seconds_per_step": 0.0123, "train_steps": 30, "train_seconds": 1.5,
    }
    metrics.update(changes)
    return metrics


def test_describe_settings_says_how_each_number_was_measured():
    assert summaries.describe_settings(_metrics()) == (
        "100 training images, 3 epoch(s) of batch 16, Adam 0.001; linear probes on f^mu of 100 training images; "
        "L-inf attacks (pgd) on 20 test images, 5 steps, PGD 2 start(s) x losses cross_entropy, margin; "
        "MSE: per-pixel squared error of g(f^mu(x)) in 0..255 units and per-image Gaussian negative "
        "log-likelihood at the model's v, on 40 test images."
    )
    metrics = _metrics(fid_extractor={"generated_images": 8, "real_images": 8, "extractor": "a classifier"})
    metrics["config"] = {**metrics["config"], "attacks": ["pgd", "square"]}
    text = summaries.describe_settings(metrics)
    assert "L-inf attacks (pgd, square)" in text and ", Square 10 queries;" in text
    assert text.endswith("; FID: 8 samples vs 8 test images, features of a classifier.")


def test_an_evaluation_without_training_has_no_training_part():
    metrics = _metrics()
    del metrics["config"]["epochs"]
    assert summaries.describe_settings(metrics).startswith("linear probes on f^mu of 100 training images;")


def test_run_summary_lines():
    lines = summaries.run_summary(_metrics()).splitlines()
    assert lines[0] == "# AVAE (mlp)"
    assert "Clean linear-probe accuracy on all test images: digit 90.0%, color 100.0%." in lines
    assert (
        "Reconstruction error, the two readings of Table 1's MSE: per pixel in 0..255 units 1234.6; per-image "
        "Gaussian negative log-likelihood 987.6; per-image sum of squared errors in [0, 1] units: 12.35."
    ) in lines
    assert "Choices: coupling=joint." in lines and "FID: 3.14." in lines
    assert "Training: 30 steps in 1.5 s, median 12.3 ms per step." in lines
    assert "| AVAE | 90.0 | 50.0 | ×1.2 | 1234.6 | 987.6 | 3.14 |" in lines


def test_run_summary_of_a_bare_encoder_with_failed_checks():
    metrics = _metrics(test_reconstruction_mse=None, fid=None, choices=None, seconds_per_step=None,
                       robustness={"problems": ["black_box: Square broke 3 more"], "checks": []})
    text = summaries.run_summary(metrics)
    assert "Reconstruction error" not in text and "FID:" not in text and "Training:" not in text
    assert "Failed checks of the evaluation (its accuracies may be too high):\n\n- black_box: Square broke 3 more\n" in text


def test_sensitivity_sentence_and_the_shift_ratio_column():
    sensitivity = {"0.1": {"shift": 1.234, "random_shift": 0.1, "shift_ratio": {"digit": 0.5, "color": 2.0}}}
    assert summaries.sensitivity_sentence(sensitivity) == (
        "Representation sensitivity (PGD on ||f^mu(x~) - f^mu(x)||): at ε=0.1 it moves ||Δf^mu|| by 1.23 "
        "(random corner 0.10); over the median class-centroid distance: digit 0.50, color 2.00."
    )
    rows = [_metrics(), _metrics(sensitivity={"0.2": {"shift_ratio": {"color": 3.0}}, **sensitivity})]
    assert summaries.shift_ratio_column(rows) == ("0.1", "digit")  # the smallest radius, its first task
    assert summaries.sensitivity_value(rows[1], "shift_ratio", "0.2", "color") == 3.0
    assert summaries.sensitivity_value(rows[0], "shift_ratio", "0.1", "digit") is None
    assert summaries.shift_ratio_column([_metrics()]) is None


def test_beyond_pgd_counts_what_the_later_attacks_broke():
    document = {"records": {"digit": {"0": [None] * 4, "0.1": [None, None, "x", "y"]}},
                "broken_by": {"digit": {"0.1": {"pgd": 1, "square": 1, "clean": 0}}}}
    column = summaries.beyond_pgd_column([_metrics(robustness=document)])
    assert column.header == "beyond PGD ε=0.1 (digit)"
    assert column.value(_metrics(robustness=document)) == "25.0"  # 1 of 4 examples, by Square
    assert summaries.beyond_pgd_column([_metrics()]) is None


def test_choices_table_has_a_column_per_open_choice():
    lines = summaries.choices_table([_metrics(), _metrics(label="VAE", choices=None)]).splitlines()
    assert lines[0] == "| Model | " + " | ".join(CHOICE_NAMES) + " |"
    assert lines[2] == "| AVAE | " + " | ".join("joint" if name == "coupling" else "-" for name in CHOICE_NAMES) + " |"
    assert lines[3] == "| VAE | " + " | ".join("-" for _ in CHOICE_NAMES) + " |"
