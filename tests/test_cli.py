import json
import subprocess
import sys

from neuralsmith import __version__


def test_version(cli):
    code, out, _ = cli("--version")
    assert code == 0 and out.strip() == f"neuralsmith {__version__}"


def test_help_lists_commands(cli):
    code, out, _ = cli("--help")
    assert code == 0 and "data" in out


def test_python_dash_m():
    proc = subprocess.run([sys.executable, "-m", "neuralsmith", "--version"], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0 and __version__ in proc.stdout


def test_user_error_is_one_line_exit_2(cli):
    code, out, err = cli("data", "info", "no-such-set")
    assert code == 2
    assert err.count("\n") == 1 and "no-such-set" in err and "Traceback" not in err


def test_unknown_command_exit_2(cli):
    code, _, _ = cli("no-such-command")
    assert code == 2


def test_data_info_json(cli):
    code, out, _ = cli("data", "info", "digits", "--json")
    info = json.loads(out)
    assert code == 0
    assert (info["n_train"] + info["n_test"], info["n_features"], info["n_classes"]) == (1797, 64, 10)
