import json

import pytest

from neuralsmith import data
from neuralsmith.runfolder import read_json
from neuralsmith.stack import StackedDAE, greedy_pretrain_sda, save_stack


def test_finetune_from_an_initializer_writes_the_run(cli, tmp_path):
    out = tmp_path / "run"
    code, stdout, _ = cli("finetune", "--arch", "64-32-10", "--init", "glorot_uniform", "--epochs", "2",
                          "--out", out, "--json")
    assert code == 0
    results = read_json(out / "results.json")
    for key in ("test_error", "valid_error", "train_error", "epochs", "seconds"):
        assert key in results and key in json.loads(stdout)
    assert (out / "config.toml").is_file() and (out / "figures" / "learning_curves.png").is_file()
    assert len((out / "metrics.csv").read_text().splitlines()) == 3


def test_finetune_a_pretrained_stack(cli, tmp_path):
    sda = StackedDAE([64, 16], levels=0.2)
    greedy_pretrain_sda(sda, data.load("digits").x_train, epochs=1, progress=False)
    save_stack(sda, tmp_path / "pre" / "checkpoints")
    code, stdout, _ = cli("finetune", tmp_path / "pre", "--epochs", "1", "--out", tmp_path / "ft", "--json")
    assert code == 0 and json.loads(stdout)["start"] == "sda"


def test_rerun_without_resume_starts_afresh(cli, tmp_path):
    out = tmp_path / "run"
    args = ("finetune", "--arch", "64-16-10", "--epochs", "1", "--out", out, "--quiet")
    assert cli(*args)[0] == 0 and cli(*args)[0] == 0
    assert read_json(out / "results.json")["epochs"] == 1


@pytest.mark.parametrize("args, message", [
    (("--epochs", "1"), "either a pre-trained RUN folder or --arch"),
    (("--arch", "64-x-10",), "arch"),
    (("--arch", "64-10", "--init", "nope"), "nope"),
])
def test_bad_input_is_one_line(cli, tmp_path, args, message):
    code, _, err = cli("finetune", *args, "--out", tmp_path / "r")
    assert code == 2 and message in err and err.count("\n") == 1


def test_missing_pretrained_run(cli, tmp_path):
    code, _, err = cli("finetune", tmp_path / "nowhere", "--out", tmp_path / "r")
    assert code == 2 and "no pre-trained stack" in err
