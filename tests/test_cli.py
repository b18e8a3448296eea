"""Command line: subcommands run, bad input exits with status 2 and one line."""

import numpy as np

import volterra_sgd as vs
from volterra_sgd.cli import main


def test_curve_writes_table_file_and_plot(tmp_path, capsys):
    out = tmp_path / "c.npz"
    fig = tmp_path / "c.png"
    code = main(["curve", "--alpha", "1.0", "--beta", "0.7", "--d", "100", "--max-iter", "1e5",
                 "--points", "20", "--out", str(out), "--plot", str(fig)])
    assert code == 0
    text = capsys.readouterr().out
    assert "P(inf)" in text and "written" in text
    c = vs.load_curve(out)
    model = vs.PLRF(1.0, 0.7, 1000, 100)
    ref = vs.loss_curve(model, c.r, learning_rate=model.reference_learning_rate(0.5))
    np.testing.assert_allclose(c.loss, ref.loss, rtol=1e-14)
    assert fig.stat().st_size > 1000


def test_curve_bad_input_exit_2(capsys):
    for argv in (["curve", "--alpha", "1", "--beta", "0.7", "--d", "0"],
                 ["curve", "--alpha", "1", "--beta", "0.7", "--d", "50", "--learning-rate", "9"],
                 ["curve", "--alpha", "x", "--beta", "0.7", "--d", "50"],
                 ["curve", "--alpha", "1", "--beta", "0.7", "--d", "50", "--v", "20"],
                 ["nonsense"]):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse errors
            code = e.code
        assert code == 2
        err = capsys.readouterr().err.strip()
        assert err and "\n" not in err
