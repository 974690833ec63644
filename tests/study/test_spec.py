from pathlib import Path

import pytest

from neuralsmith.study.spec import StudySpec

QUICK = Path(__file__).resolve().parents[2] / "configs" / "quick.toml"


def test_quick_config_is_the_default_spec():
    assert StudySpec.from_toml(QUICK) == StudySpec()


def test_overrides_win_and_none_is_ignored():
    spec = StudySpec.from_toml(QUICK, seeds=3, depths=[2], data=None)
    assert (spec.seeds, spec.depths, spec.data) == (3, (2,), "digits")


def test_unknown_key_refused(tmp_path):
    (tmp_path / "s.toml").write_text("[study]\nseedz = 3\n")
    with pytest.raises(ValueError, match="unknown key.*seedz"):
        StudySpec.from_toml(tmp_path / "s.toml")


@pytest.mark.parametrize("key, value, match", [
    ("seeds", "3", "seeds must be int"), ("depths", 2, "depths must be a list"),
    ("depths", [1.5], "list of int"), ("lr", "fast", "lr must be float"), ("seeds", 0, "seeds must be >= 1"),
    ("activation", "swish", "activation"), ("depths", [], "depths")])
def test_bad_values_refused(key, value, match):
    with pytest.raises(ValueError, match=match):
        StudySpec.from_mapping({key: value})


def test_int_accepted_for_float():
    assert StudySpec.from_mapping({"lr": 1}).lr == 1.0


def test_every_shipped_config_reads():
    for path in QUICK.parent.glob("*.toml"):
        assert StudySpec.from_toml(path).depths
