"""``neuralsmith study`` on the one run-folder policy: refusals, overwrite, lock, file modes, seeds."""

import contextlib
import io
import os
import shutil
import stat
import subprocess
import zlib

import pytest
import torch

from neuralsmith import data as data_api
from neuralsmith.cli import main
from neuralsmith.runfolder import load_toml, read_json
from neuralsmith.seeds import derived_generator
from neuralsmith.study import StudySpec, run, starts

TINY = """[study]
name = "tiny"
depths = [1]
starts = ["default", "glorot"]
seeds = 2
epochs = 1
hidden = 8
families = ["uniform", "default"]
function_space_examples = 20
threads = 1
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A tiny study run through the CLI under umask 022, in a folder with spaces and non-ASCII."""
    root = tmp_path_factory.mktemp("study")
    (root / "tiny.toml").write_text(TINY)
    out = root / "run folder é"
    old = os.umask(0o022)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            code = main(["study", "--config", str(root / "tiny.toml"), "--inits", "default,uniform",
                         "--out", str(out), "--device", "cpu", "--quiet"])
    finally:
        os.umask(old)
    assert code == 0
    return root / "tiny.toml", out


@pytest.fixture
def copy(finished, tmp_path):
    """A private copy of the finished run (for tests that change it), and its config file."""
    config, out = finished
    shutil.copytree(out, tmp_path / "run é")
    return config, tmp_path / "run é"


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_config_records_the_kind_and_the_study_table(finished):
    _, out = finished
    config = load_toml(out / "config.toml")
    assert config["kind"] == "study"
    assert config["study"]["starts"] == ["default", "uniform"]  # --inits replaced the file's list
    assert StudySpec.from_toml(out / "config.toml") == StudySpec.from_toml(finished[0], starts=["default", "uniform"])
    assert sorted(p.stem for p in (out / "trials").glob("*.json")) == ["depth1-default", "depth1-uniform"]


def test_report_and_results_are_0644_under_umask_022(finished):
    _, out = finished
    for name in ("report.html", "results.json", "results.csv", "config.toml", "trials/depth1-default.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name


def test_resume_with_other_epochs_is_refused_and_changes_nothing(cli, finished):
    config, out = finished
    before = _snapshot(out)
    code, _, err = cli("study", "--config", config, "--inits", "default,uniform", "--epochs", "3",
                       "--out", out, "--resume", "--quiet")
    assert code == 2 and err.count("\n") == 1
    assert "other settings (study.epochs)" in err and "--overwrite" in err
    assert _snapshot(out) == before


def test_rerun_without_resume_or_overwrite_is_refused(cli, finished):
    config, out = finished
    before = _snapshot(out)
    code, _, err = cli("study", "--config", config, "--inits", "default,uniform", "--out", out, "--quiet")
    assert code == 2 and err.count("\n") == 1 and "--resume" in err and "--overwrite" in err
    assert _snapshot(out) == before


def test_resume_of_a_finished_study_keeps_its_trials_threads_may_differ(cli, copy, tmp_path):
    config, out = copy
    (tmp_path / "threads.toml").write_text(config.read_text().replace("threads = 1", "threads = 2"))
    trials = _snapshot(out / "trials")
    code, _, err = cli("study", "--config", tmp_path / "threads.toml", "--inits", "default,uniform",
                       "--out", out, "--resume", "--quiet")
    assert code == 0, err
    assert _snapshot(out / "trials") == trials
    assert load_toml(out / "config.toml")["study"]["threads"] == 2


def test_overwrite_starts_afresh(cli, copy):
    config, out = copy
    (out / "trials" / "depth1-stray.json").write_text("{}")
    code, _, err = cli("study", "--config", config, "--inits", "default,uniform", "--epochs", "2",
                       "--out", out, "--overwrite", "--quiet")
    assert code == 0, err
    assert not (out / "trials" / "depth1-stray.json").exists()
    assert load_toml(out / "config.toml")["study"]["epochs"] == 2
    assert len(read_json(out / "trials" / "depth1-default.json")["curves"]["test_error"]) == 2


def test_a_live_lock_refuses_a_second_writer_naming_its_pid(cli, finished, tmp_path):
    config, _ = finished
    out = tmp_path / "locked"
    out.mkdir()
    holder = subprocess.Popen(["sleep", "60"])
    try:
        (out / ".lock").write_text(f"{holder.pid}\n")
        code, _, err = cli("study", "--config", config, "--out", out, "--quiet")
    finally:
        holder.kill()
        holder.wait()
    assert code == 2 and f"PID {holder.pid}" in err and err.count("\n") == 1
    assert [p.name for p in out.iterdir()] == [".lock"]  # nothing written


def test_a_stale_lock_is_taken_over(cli, copy):
    config, out = copy
    gone = subprocess.Popen(["true"])
    gone.wait()
    (out / ".lock").write_text(f"{gone.pid}\n")
    code, _, err = cli("study", "--config", config, "--inits", "default,uniform", "--out", out,
                       "--resume", "--quiet")
    assert code == 0, err
    assert not (out / ".lock").exists()  # released at the end


def test_methods_is_now_inits(cli, finished, tmp_path):
    code, _, err = cli("study", "--config", finished[0], "--methods", "default", "--out", tmp_path / "r")
    assert code == 2 and "--methods" in err


def test_api_refuses_an_unknown_mode_before_writing(tmp_path):
    with pytest.raises(ValueError, match="mode must be one of new, resume, overwrite"):
        run(StudySpec(depths=(1,), starts=("default",), seeds=1, epochs=1, hidden=8), tmp_path / "r",
            mode="append", progress=False)
    assert not (tmp_path / "r").exists()


def test_trial_seeds_are_the_crc32_of_their_parts():
    """seeds.derived_generator hashes as the study always has, so results are unchanged."""
    assert derived_generator(0, 2, "dbn", 3).initial_seed() == zlib.crc32(b"0/2/dbn/3")
    assert derived_generator(7, "function-space").initial_seed() == zlib.crc32(b"7/function-space")


def test_cpu_pretraining_draws_from_the_seeds_own_generators():
    gens = [derived_generator(0, 1, "dbn", s) for s in range(2)]
    assert all(a is b for a, b in zip(starts.pretraining_generators(gens, torch.device("cpu")), gens))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_dbn_start_pretrains_on_the_device_and_returns_cpu_networks():
    spec = StudySpec(depths=(1,), starts=("dbn",), seeds=2, hidden=8, pretrain_epochs=1)
    ds = data_api.load("digits", validation=spec.validation, seed=0)
    gens = [derived_generator(0, 1, "dbn", s) for s in range(2)]
    models = starts.build("dbn", spec, 1, ds, gens, device="cuda")
    assert all(p.device.type == "cpu" for m in models for p in m.parameters())
    assert torch.isfinite(models[0][0].weight).all()


def test_a_study_folder_reads_back_as_a_study_run(finished):
    from neuralsmith import experiments
    from neuralsmith.experiments import study as study_experiment
    from neuralsmith.study import config_record

    _, out = finished
    module, config = experiments.read_run(out)
    assert module is study_experiment and config.study == StudySpec.from_toml(out / "config.toml")
    assert experiments.config_record(config) == config_record(config.study)
    with pytest.raises(ValueError, match="a study run has nothing to evaluate"):
        experiments.evaluate(out)


def test_a_run_made_before_a_setting_existed_resumes_at_its_default(cli, copy):
    """Settings added to the code since (lr_grid, precision) do not block --resume at their defaults."""
    config, out = copy
    path = out / "config.toml"
    older = "\n".join(line for line in path.read_text().splitlines()
                      if not line.startswith(("lr_grid", "precision")))
    path.write_text(older + "\n")
    args = ("study", "--config", config, "--inits", "default,uniform", "--out", out, "--quiet")
    code, _, err = cli(*args, "--resume")
    assert code == 0, err
    assert "lr_grid" in load_toml(path)["study"]  # the resumed run wrote the whole config back
    path.write_text(older.replace("[study]", "[study]\nlr_grid = [0.5]") + "\n")
    code, _, err = cli(*args, "--resume")
    assert code == 2 and "study.lr_grid" in err  # a value that is not the default still differs
