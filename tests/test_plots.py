import numpy as np
import pytest

from keras_imbalance import plots


def _png_size(path):
    import matplotlib.image

    return matplotlib.image.imread(path).shape


def test_plots_write_pngs(tmp_path):
    recall = plots.plot_per_class_recall({"erm": [1, 0.5, 0.0], "gamo": [0.9, 0.7, 0.3]}, str(tmp_path / "r.png"),
                                         class_counts=[100, 10, 2])
    cms = plots.plot_confusion_matrices({"erm": np.eye(3) * 5, "m2m": np.ones((3, 3))}, str(tmp_path / "c.png"))
    grid = plots.plot_image_grid(np.random.default_rng(0).random((2, 3, 8, 8, 1)), str(tmp_path / "g.png"),
                                 row_labels=["a", "b"], title="samples")
    for path in (recall, cms, grid):
        h, w = _png_size(path)[:2]
        assert h > 100 and w > 100
    with pytest.raises(ValueError, match="rows, cols"):
        plots.plot_image_grid(np.zeros((8, 8)), str(tmp_path / "bad.png"))
