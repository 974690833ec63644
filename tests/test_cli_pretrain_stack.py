"""``neuralsmith pretrain dbn|sda``, ``evaluate`` and ``sample`` on stack runs, end to end."""

import json

import pytest

from neuralsmith.experiments import stack as stack_experiment
from neuralsmith.runfolder import load_toml, read_json

SMALL = ("--arch", "16-8", "--epochs", "1", "--quiet")


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One finished dbn and one finished sda run (defaults but for a small stack)."""
    from neuralsmith.cli import main

    root = tmp_path_factory.mktemp("stack-runs")
    for kind in ("dbn", "sda"):
        assert main(["pretrain", kind, *SMALL, "--out", str(root / kind)]) == 0
    return root


def test_sda_with_two_layers_takes_the_default_corruption(runs):
    config = load_toml(runs / "sda" / "config.toml")
    assert config["kind"] == "sda" and config["arch"] == [16, 8]
    assert config["train"] == {"epochs": 1, "lr": 0.1, "batch_size": 20, "corruption": [0.2],
                               "precision": "fp32"}
    assert stack_experiment.Config(kind="sda", arch=(500, 500)).levels() == [0.2, 0.2]


@pytest.mark.parametrize("kind", ["dbn", "sda"])
def test_run_folder_records_data_and_binarization(runs, kind):
    run = runs / kind
    assert (run / "checkpoints" / "stack.json").is_file() and (run / "figures" / "filters.png").is_file()
    assert (run / "figures" / "samples.png").is_file() == (kind == "dbn")
    assert len((run / "metrics.csv").read_text().splitlines()) == 1 + 2  # one row per layer-epoch
    meta = read_json(run / "checkpoints" / "stack.json")
    assert (meta["data"], meta["binarize"], meta["kind"], meta["sizes"]) == ("digits", "none", kind, [64, 16, 8])
    results = read_json(run / "results.json")
    assert results["epochs"] == [1, 1] and results["seed"] == 0 and results["device"] == "cpu"


@pytest.mark.parametrize("kind, keys", [("dbn", {"reconstruction_error"}),
                                        ("sda", {"reconstruction_error", "cross_entropy"})])
def test_evaluate_json_scores_every_layer(cli, runs, kind, keys):
    code, out, err = cli("evaluate", runs / kind, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["kind"] == kind and result["n_test"] > 0
    assert set(result) == {"kind", "n_test", *keys}
    for key in keys:
        assert len(result[key]) == 2 and all(v > 0 for v in result[key])
    assert read_json(runs / kind / "evaluation.json") == result


def test_evaluate_refuses_rbm_options_on_a_stack(cli, runs):
    code, _, err = cli("evaluate", runs / "dbn", "--ais")
    assert code == 2 and "--ais" in err


@pytest.mark.parametrize("kind, nth", [("dbn", 2), ("sda", 1)])
def test_resume_after_a_kill_ends_bit_identical(cli, killed_cli, same_files, tmp_path, kind, nth):
    """Killed in layer 2 (a DBN after its first epoch there), resumed: the same stack, bit for bit."""
    args = ("pretrain", kind, "--arch", "16-8", "--epochs", "2", "--quiet")
    assert cli(*args, "--out", tmp_path / "straight")[0] == 0
    killed_cli(*args, "--out", tmp_path / "killed", where=lambda folder, name: "layer-1" in f"{folder}/{name}", nth=nth)
    assert not (tmp_path / "killed" / "results.json").exists()
    code, _, err = cli(*args, "--out", tmp_path / "killed")
    assert code == 2 and "--resume" in err
    code, _, err = cli(*args, "--out", tmp_path / "killed", "--resume")
    assert code == 0, err
    assert same_files(tmp_path / "killed" / "checkpoints", tmp_path / "straight" / "checkpoints",
                      ("stack.safetensors", "stack.json"))
    assert len((tmp_path / "killed" / "metrics.csv").read_text().splitlines()) == 1 + 4


def test_mismatched_resume_is_refused_and_changes_nothing(cli, runs):
    before = _snapshot(runs / "sda")
    code, _, err = cli("pretrain", "sda", "--arch", "16-4", "--epochs", "2", "--quiet",
                       "--out", runs / "sda", "--resume", "--device", "cpu")
    assert code == 2 and err.count("\n") == 1
    assert "other settings (arch, train.epochs)" in err
    assert _snapshot(runs / "sda") == before


def test_rerun_without_resume_or_overwrite_is_refused(cli, runs):
    before = _snapshot(runs / "dbn")
    code, _, err = cli("pretrain", "dbn", *SMALL, "--out", runs / "dbn")
    assert code == 2 and "--resume" in err and "--overwrite" in err
    assert _snapshot(runs / "dbn") == before


def test_resume_with_the_same_settings_and_another_device(cli, tmp_path):
    out = tmp_path / "r"
    assert cli("pretrain", "sda", *SMALL, "--out", out)[0] == 0
    stack = (out / "checkpoints" / "stack.safetensors").read_bytes()
    code, _, err = cli("pretrain", "sda", *SMALL, "--out", out, "--resume", "--device", "cpu")
    assert code == 0, err
    assert (out / "checkpoints" / "stack.safetensors").read_bytes() == stack


def test_pretrain_then_finetune(cli, runs, tmp_path):
    code, out, err = cli("finetune", runs / "sda", "--epochs", "1", "--out", tmp_path / "ft", "--json")
    assert code == 0, err
    assert json.loads(out)["start"] == "sda"


def test_sample_a_dbn_is_seeded(cli, runs):
    figure = runs / "dbn" / "figures" / "samples.png"
    pictures = []
    for _ in range(2):
        code, out, err = cli("sample", runs / "dbn", "--n", "9", "--gibbs-steps", "5", "--seed", "3",
                             "--device", "cpu", "--json")
        assert code == 0, err
        assert json.loads(out)["figure"] == str(figure)
        pictures.append(figure.read_bytes())
    assert pictures[0] == pictures[1]


@pytest.mark.parametrize("make", [False, True])
def test_sample_outside_a_run_leaves_nothing(cli, tmp_path, make):
    target = tmp_path / "typo" / "run"
    if make:
        target.mkdir(parents=True)
    code, _, err = cli("sample", target)
    assert code == 2 and err.count("\n") == 1 and "not a run folder" in err
    assert list(tmp_path.rglob("*")) == ([tmp_path / "typo", target] if make else [])


def test_sampling_an_sda_is_refused(cli, runs):
    code, _, err = cli("sample", runs / "sda")
    assert code == 2 and "not a generative model" in err


@pytest.mark.parametrize("args, message", [
    (("dbn", "--arch", "16,x"), "--arch takes"),
    (("dbn", "--arch", "0"), "--arch takes"),
    (("sda", "--arch", "16-8", "--corruption", "0.1,0.2,0.3"), "one per layer"),
    (("sda", "--corruption", "0.1,x"), "comma-separated"),
    (("sda", "--corruption", "1.5"), "in [0, 1]"),
    (("dbn", "--k", "0"), "k must be >= 1"),
    (("sda", "--binarize", "otsu"), "binarize must be one of"),
])
def test_bad_input_writes_nothing(cli, tmp_path, args, message):
    code, _, err = cli("pretrain", *args, "--out", tmp_path / "r")
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()




def test_each_kind_has_its_own_learning_rate():
    assert stack_experiment.defaults("dbn")["lr"] == 0.05 and stack_experiment.defaults("sda")["lr"] == 0.1
