"""Every command-line default is the API default: generated from the settings objects.

For each command, every option named like a leaf setting of its Config (see
:func:`neuralsmith.settings.flat_defaults`) must default to that setting's default, so a
default has one home and the command line cannot drift from the API.
"""

from __future__ import annotations

import re

import pytest
import typer

from neuralsmith.cli import app
from neuralsmith.experiments import dbm, diagnose, finetune, hybrid, linear_depth, rbm, rnn, stack
from neuralsmith.settings import flat_defaults
from neuralsmith.study import StudySpec

#: command -> the API defaults its options must equal
API_DEFAULTS = {
    "pretrain rbm": lambda: flat_defaults(rbm.Config),
    "pretrain dbn": lambda: stack.defaults("dbn"),
    "pretrain sda": lambda: stack.defaults("sda"),
    "pretrain dbm": lambda: flat_defaults(dbm.Config),
    "finetune": lambda: flat_defaults(finetune.Config),
    "diagnose": lambda: flat_defaults(diagnose.Config),
    "classrbm": lambda: flat_defaults(hybrid.Config),
    "hybrid": lambda: {**flat_defaults(hybrid.DeepConfig), "model": hybrid.DeepConfig().kind,
                       "objective": None},  # None: chosen by --labeled (hybrid.default_objective)
    "rnn": lambda: flat_defaults(rnn.Config),
    "linear-depth": lambda: flat_defaults(linear_depth.Config),
    "study": lambda: {("inits" if k == "starts" else k): None  # None: the --config file's value
                      for k in flat_defaults(StudySpec)},
}
RUNTIME = {"out", "resume", "overwrite", "json", "quiet", "device", "config", "figure", "init_opt", "tensorboard",
           "workers", "scheduler"}


def _commands(group, path=()):
    for name, sub in getattr(group, "commands", {}).items():
        if hasattr(sub, "commands"):
            yield from _commands(sub, path + (name,))
        else:
            yield " ".join(path + (name,)), sub


COMMANDS = dict(_commands(typer.main.get_command(app)))


def _options(command) -> dict:
    return {p.name: p.default for p in command.params if p.param_type_name == "option"}


def _as_api(cli_value, api_value):
    """A list option's text default ("500-500", "0.05,0.01") as the tuple the API holds."""
    if isinstance(api_value, tuple) and isinstance(cli_value, str):
        kind = type(api_value[0]) if api_value else str
        return tuple(kind(t) for t in re.split(r"[,-]", cli_value) if t)
    return cli_value


def test_every_training_command_is_checked():
    training = {name for name, cmd in COMMANDS.items() if "out" in _options(cmd) and name != "diagnose"}
    assert training <= set(API_DEFAULTS), training - set(API_DEFAULTS)


@pytest.mark.parametrize("name", sorted(API_DEFAULTS))
def test_cli_defaults_equal_the_api_defaults(name):
    api, options = API_DEFAULTS[name](), _options(COMMANDS[name])
    shared = {k for k in options if k in api}
    assert len(shared) >= 5, f"{name}: few options match settings; {sorted(options)}"
    for key in shared:
        assert _as_api(options[key], api[key]) == api[key], f"{name} --{key}"
    assert set(options) - shared <= RUNTIME | {"data", "seed", "binarize"}, set(options) - shared - RUNTIME


def test_sda_takes_two_layers_with_its_defaults(cli, tmp_path):
    code, _, err = cli("pretrain", "sda", "--arch", "500,500", "--epochs", "1", "--quiet",
                       "--out", tmp_path / "sda")
    assert code == 0, err
