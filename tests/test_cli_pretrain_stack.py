import json

import pytest

from neuralsmith.runfolder import read_json


@pytest.mark.parametrize("kind", ["dbn", "sda"])
def test_pretrain_then_finetune(cli, tmp_path, kind):
    pre, ft = tmp_path / "pre", tmp_path / "ft"
    code, _, _ = cli("pretrain", kind, "--layers", "16,8", "--epochs", "1", "--corruption", "0.2",
                     "--out", pre, "--quiet")
    assert code == 0
    assert (pre / "checkpoints" / "stack.json").is_file() and (pre / "figures" / "filters.png").is_file()
    assert len((pre / "metrics.csv").read_text().splitlines()) == 1 + 2  # one row per layer-epoch
    code, out, _ = cli("finetune", pre, "--epochs", "1", "--out", ft, "--json")
    assert code == 0 and json.loads(out)["start"] == kind
    assert read_json(ft / "results.json")["test_error"] <= 100.0


def test_sample_a_dbn(cli, tmp_path):
    pre = tmp_path / "pre"
    assert cli("pretrain", "dbn", "--layers", "16,8", "--epochs", "1", "--out", pre, "--quiet")[0] == 0
    code, out, _ = cli("sample", pre, "--n", "9", "--gibbs-steps", "5", "--json")
    assert code == 0 and (pre / "figures" / "samples.png").is_file()


def test_rerun_with_other_settings_is_refused(cli, tmp_path):
    pre = tmp_path / "pre"
    assert cli("pretrain", "sda", "--layers", "8", "--epochs", "1", "--corruption", "0.1", "--out", pre, "--quiet")[0] == 0
    code, _, err = cli("pretrain", "sda", "--layers", "8", "--epochs", "2", "--corruption", "0.1", "--out", pre)
    assert code == 2 and "other settings" in err


@pytest.mark.parametrize("args, message", [
    (("dbn", "--layers", "16,x"), "comma-separated"),
    (("sda", "--layers", "16,8", "--corruption", "0.1,0.2,0.3"), "one per layer"),
    (("dbn", "--layers", "0"), "layers must be"),
])
def test_bad_input(cli, tmp_path, args, message):
    code, _, err = cli("pretrain", *args, "--out", tmp_path / "r")
    assert code == 2 and message in err


def test_sampling_an_sda_is_refused(cli, tmp_path):
    pre = tmp_path / "pre"
    assert cli("pretrain", "sda", "--layers", "8", "--epochs", "1", "--corruption", "0.1", "--out", pre, "--quiet")[0] == 0
    code, _, err = cli("sample", pre)
    assert code == 2 and "not a generative model" in err
