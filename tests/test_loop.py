"""The training engine on a toy updater: roll-back, keep-best + patience, stopping, resume."""

import pytest
import torch

from neuralsmith.loop import fit


def weight(walk):
    return float(walk.model.weight.detach())


class Walk:
    """One parameter that moves by ``steps[epoch]``; its validation error is read from ``errors``."""

    def __init__(self, steps, errors=None, lr=1.0):
        self.model, self.epoch = torch.nn.Linear(1, 1, bias=False), 0
        self.steps, self.errors, self.lr = steps, errors, lr
        with torch.no_grad():
            self.model.weight.zero_()

    def n_batches(self):
        return 1

    def run_epoch(self, on_batch):
        self.model.weight.add_(self.lr * self.steps[self.epoch])
        on_batch()

    def monitor(self):
        row = {"w": weight(self)}
        if self.errors is not None:
            row["valid_error"] = self.errors[self.epoch - 1]
        return row

    def finite(self):
        return bool(torch.isfinite(self.model.weight).all())

    def tensors(self):
        return {"w": self.model.weight.detach().clone()}

    def load_tensors(self, tensors):
        self.model.weight.copy_(tensors["w"])

    def meta(self):
        return {"settings": {"lr": self.lr}}

    def label(self):
        return "walk"

    def summary(self, row):
        return f"w {row['w']}"


def test_rows_have_one_shape():
    hist = fit(Walk([1.0, 2.0]), epochs=2, progress=False)
    assert [set(r) for r in hist.rows] == [{"epoch", "w", "seconds"}] * 2
    assert hist.column("w") == [1.0, 3.0] and hist.best_epoch is None and not hist.diverged


def test_divergence_rolls_back_to_the_last_good_state():
    walk = Walk([1.0, float("nan"), 1.0])
    hist = fit(walk, epochs=3, progress=False)
    assert hist.diverged and len(hist) == 1 and walk.epoch == 1
    assert weight(walk) == 1.0


def test_best_epoch_is_restored_and_patience_stops():
    walk = Walk([1.0] * 10, errors=[5.0, 3.0, 4.0, 4.0, 1.0] + [9.0] * 5)
    hist = fit(walk, epochs=10, patience=2, progress=False)
    assert hist.stopped_early and len(hist) == 4
    assert (hist.best_epoch, hist.best_valid_error) == (2, 3.0)
    assert weight(walk) == 2.0  # the parameters after epoch 2


def test_callback_stops_and_sees_each_record():
    seen = []
    hist = fit(Walk([1.0] * 5), epochs=5, progress=False,
               callbacks=[lambda row: seen.append(row["epoch"]) or row["epoch"] == 3])
    assert hist.stopped_early and seen == [1, 2, 3]


def test_resume_continues_and_keeps_the_best(tmp_path):
    errors = [5.0, 3.0, 4.0, 4.5]
    fit(Walk([1.0, 2.0, 3.0, 4.0], errors), epochs=2, checkpoint_dir=tmp_path, progress=False)
    walk = Walk([1.0, 2.0, 3.0, 4.0], errors)
    hist = fit(walk, epochs=4, checkpoint_dir=tmp_path, progress=False)
    assert hist.column("w") == [1.0, 3.0, 6.0, 10.0] and hist.best_epoch == 2
    assert weight(walk) == 3.0


def test_resume_with_other_settings_is_refused_naming_them(tmp_path):
    fit(Walk([1.0, 1.0]), epochs=1, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"trained with lr=1.0 \(now 0.5\)"):
        fit(Walk([1.0, 1.0], lr=0.5), epochs=2, checkpoint_dir=tmp_path, progress=False)


def test_zero_patience_is_refused():
    with pytest.raises(ValueError, match="patience must be an int >= 1"):
        fit(Walk([1.0]), epochs=1, patience=0, progress=False)


def test_every_callback_sees_the_record_that_stops():
    seen = []
    hist = fit(Walk([1.0] * 5), epochs=5, progress=False,
               callbacks=[lambda row: row["epoch"] == 2, lambda row: seen.append(row["epoch"])])
    assert hist.stopped_early and seen == [1, 2]


def test_a_stopped_run_stays_stopped_on_resume(tmp_path):
    fit(Walk([1.0] * 5), epochs=5, checkpoint_dir=tmp_path, progress=False,
        callbacks=[lambda row: row["epoch"] == 2])
    walk = Walk([1.0] * 5)
    hist = fit(walk, epochs=5, checkpoint_dir=tmp_path, progress=False)
    assert hist.stopped_early and len(hist) == 2 and weight(walk) == 2.0


def test_score_chooses_what_keep_best_minimizes():
    walk = Walk([1.0] * 4)
    hist = fit(walk, epochs=4, progress=False, score=lambda row: abs(row["w"] - 2.0))
    assert (hist.best_epoch, hist.best_valid_error) == (2, 0.0) and weight(walk) == 2.0
