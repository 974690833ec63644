import torch

from neuralsmith import plots


def test_tile_shape_and_range():
    canvas = plots.tile(torch.randn(10, 12), (3, 4))
    assert canvas.shape == (3 * (3 + 1) - 1, 4 * (4 + 1) - 1)  # 3 rows x 4 columns of 3x4 images
    assert canvas.min() >= 0.0 and canvas.max() <= 1.0


def test_image_grid_writes_png(tmp_path):
    path = plots.save(plots.image_grid(torch.rand(4, 64), (8, 8), "x"), tmp_path / "g.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gradient_norms_panels_write_png(tmp_path):
    panels = {"sigmoid": {"glorot": [1e-6, 1e-3, 1.0], "zero layer": [0.0, 1.0, 2.0]}, "tanh": {"he": [1, 1, 1]}}
    fig = plots.gradient_norms(panels, n_cols=1)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2
    assert plots.save(fig, tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_sigmoid_derivative_figure(tmp_path):
    fig = plots.sigmoid_derivative(max_depth=5)
    assert len(fig.axes) == 2
    assert plots.save(fig, tmp_path / "s.png").stat().st_size > 0
