from keras_imbalance import cli


def test_demo_runs_and_prints_report(capsys):
    assert cli.main(["demo", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "long-tailed training set" in out
    assert "balanced accuracy" in out and "geometric mean" in out
    assert out.count("\n") > 12
