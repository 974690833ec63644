import torch

from neuralsmith import plots


def test_tile_shape_and_range():
    canvas = plots.tile(torch.randn(10, 12), (3, 4))
    assert canvas.shape == (3 * (3 + 1) - 1, 4 * (4 + 1) - 1)  # 3 rows x 4 columns of 3x4 images
    assert canvas.min() >= 0.0 and canvas.max() <= 1.0


def test_image_grid_writes_png(tmp_path):
    path = plots.save(plots.image_grid(torch.rand(4, 64), (8, 8), "x"), tmp_path / "g.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
