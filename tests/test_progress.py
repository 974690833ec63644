"""Progress bars: legible at 80 columns, one final line when not in a terminal, nested bars."""

import io

from rich.console import Console

from neuralsmith.loop import shown
from neuralsmith.progress import progress_bar

LONG = {"train_loss": 0.123456, "valid_error": 12.3456, "valid_loss": 0.98765,
        "reconstruction_error": 0.0456, "pseudo_likelihood": -25.27}


def test_not_a_terminal_gets_one_final_line():
    err = Console(file=io.StringIO(), force_terminal=False, width=80)
    with progress_bar("RBM pcd-1", total=10, console=err) as bar:
        for _ in range(10):
            bar.advance(LONG)
    lines = err.file.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("RBM pcd-1: 10/10 in ") and "valid_error 12.35" in lines[0]


def test_disabled_bar_writes_nothing():
    err = Console(file=io.StringIO(), force_terminal=False)
    with progress_bar("x", total=3, enabled=False, console=err) as bar:
        bar.advance()
    assert err.file.getvalue() == ""


def test_80_columns_keep_name_bar_count_and_time_with_long_metrics():
    err = Console(file=io.StringIO(), force_terminal=True, width=80, color_system=None)
    with progress_bar("fine-tuning a very long description 3/30", total=1000, console=err) as bar:
        bar.advance(LONG, steps=500)
        bar._progress.refresh()
        frame = err.file.getvalue()
    rows = [r for r in frame.replace("\r", "\n").split("\n") if "500/1000" in r]
    assert rows, frame
    first = rows[-1].replace("\x1b[?25l", "").replace("\x1b[2K", "")
    assert len(first.rstrip()) <= 80
    assert "━" in first and "500/1000" in first and ("-:--:--" in first or ":" in first)
    assert "train_loss 0.1235" in frame  # the numbers, on their own line


def test_nested_bar_moves_the_outer_one_within_its_step():
    err = Console(file=io.StringIO(), force_terminal=False)
    with progress_bar("study", total=4, console=err) as outer:
        with progress_bar("3 seeds", total=10, enabled=False) as inner:
            for _ in range(5):
                inner.advance()
        assert outer._partial == 0.5
        outer.advance()
        assert outer._partial == 0.0 and outer.done == 1
    assert err.file.getvalue().count("\n") == 1  # the inner bar wrote nothing


def test_epoch_record_shows_no_test_metrics():
    assert shown({"epoch": 1, "train_loss": 0.1, "valid_error": 2.0, "test_error": 1.5,
                  "seconds": 3.0}) == {"train_loss": 0.1, "valid_error": 2.0}
