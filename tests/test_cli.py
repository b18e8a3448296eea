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


def _fail_if_called(*args, **kwargs):
    raise AssertionError("the computation started before the arguments were checked")


def _run(argv):
    try:
        return main(argv)
    except SystemExit as e:  # argparse errors
        return e.code


def test_user_mistakes_are_one_line_before_any_computation(tmp_path, capsys, monkeypatch):
    import importlib

    for mod, name in (("curve", "loss_curve"), ("compute_optimal", "compute_optimal"),
                      ("demo", "run_demo")):
        monkeypatch.setattr(importlib.import_module(f"volterra_sgd.{mod}"), name,
                            _fail_if_called)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"\x00\x01not a zip")
    curve = ["curve", "--alpha", "1", "--beta", "0.7", "--d", "50"]
    co = ["compute-optimal", "--alpha", "0.7", "--beta", "0.7", "--out", str(tmp_path / "co")]
    cases = {
        "missing output folder": (curve + ["--out", str(tmp_path / "no" / "c.npz")], "exist"),
        "wrong --out suffix": (curve + ["--out", str(tmp_path / "c.txt")], ".npz or .csv"),
        "wrong --plot suffix": (curve + ["--plot", str(tmp_path / "c.xyz")], ".png"),
        "--plot into a missing folder": (curve + ["--plot", str(tmp_path / "no" / "c.png")],
                                         "exist"),
        "missing --spectrum": (["curve", "--spectrum", str(tmp_path / "s.csv"), "--d", "5"],
                               "no such file"),
        "--spectrum a folder": (["curve", "--spectrum", str(tmp_path), "--d", "5"],
                                "directory"),
        "--spectrum not an archive": (["curve", "--spectrum", str(junk), "--d", "5"],
                                      "junk.npz"),
        "--d 1.5": (curve[:-1] + ["1.5"], "integer"),
        "--max-iter 0.5": (curve + ["--max-iter", "0.5"], ">= 1"),
        "negative --iterations": (curve + ["--iterations", "0", "-3"], ">= 0"),
        "--out an existing file": (co[:-1] + [str(a_file)], "not a directory"),
        "--n-boot 0": (co + ["--n-boot", "0"], ">= 1"),
        "--window reversed": (co + ["--window", "1e8", "1e6"], "--window"),
        "--window beyond --max-flops": (co + ["--window", "1e6", "1e20"], "--max-flops"),
        "--v-ratio 0.5": (co + ["--v-ratio", "0.5"], "> 1"),
        "demo into a missing folder": (["demo", "--out", str(tmp_path / "no" / "d.png")],
                                       "exist"),
        "phases --plot .xyz": (["phases", "--plot", str(tmp_path / "p.xyz")], ".png"),
        "validate --out an existing file": (["validate", "--out", str(a_file)],
                                            "not a directory"),
    }
    for case, (argv, words) in cases.items():
        assert _run(argv) == 2, case
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and words in err and "Traceback" not in err, (case, err)
    assert not (tmp_path / "co").exists()


def test_integral_floats_accepted_and_usage_without_arguments(capsys):
    from volterra_sgd.cli import _positive_int

    assert _positive_int("1e3") == _positive_int("1000.0") == _positive_int("1000") == 1000
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: volterra-sgd") and "compute-optimal" in err
    import argparse

    from volterra_sgd.cli import build_parser

    subs = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {"curve", "compute-optimal", "phases", "ridge", "validate", "demo", "fit"} <= set(
        subs.choices)
    for sub in subs.choices:
        try:
            main([sub, "--help"])
        except SystemExit:
            pass
        text = capsys.readouterr().out
        for bad in ("%%", "``", ":math:", "docs/", "THEORY", "issue"):
            assert bad not in text, (sub, bad)


def test_ridge_without_a_ratio_and_broken_pipe(capsys):
    import subprocess
    import sys

    # N >= v: the deterministic loss is 0, the ratio sim/DE - 1 does not exist
    assert main(["ridge", "--alpha", "1", "--beta", "0.7", "--n-features", "60",
                 "--n-samples", "80", "--v", "50", "--runs", "2"]) == 0
    assert "n/a" in capsys.readouterr().out
    proc = subprocess.Popen([sys.executable, "-m", "volterra_sgd", "phases"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # like `| head -0`: the reader is gone before the first write
    err = proc.stderr.read().strip()
    assert proc.wait() == 2
    assert "broken pipe" in err and "\n" not in err and "Traceback" not in err


def test_missing_extra_is_one_line(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # `import tqdm.auto` fails
    argv = ["compute-optimal", "--alpha", "0.7", "--beta", "0.7", "--d-min", "16", "--d-max",
            "64", "--points", "3", "--max-flops", "1e5", "--progress", "--jobs", "1",
            "--out", str(tmp_path / "co")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "tqdm" in err and "\n" not in err


def test_numerical_failure_is_one_line_with_status_1(capsys):
    # at gamma = (1 - 1e-12) gamma*, late iterations are ill-conditioned: loss_curve raises
    # ConvergenceError (docs/curves.md), which the CLI reports in one line, status 1
    import volterra_sgd as vs

    model = vs.PLRF(1.0, 0.7, 500, 50)
    g = vs.max_stable_learning_rate(model) * (1 - 1e-12)
    argv = ["curve", "--alpha", "1", "--beta", "0.7", "--v", "500", "--d", "50",
            "--learning-rate", repr(g), "--max-iter", "1e12", "--points", "20"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "exceeds tol" in err and "\n" not in err and "Traceback" not in err


def test_validate_jobs_reaches_the_runner(tmp_path, monkeypatch, capsys):
    import volterra_sgd.validate as validate

    seen = {}

    def fake(out, **kw):
        seen.update(kw)
        raise ValueError("stop here")

    monkeypatch.setattr(validate, "run_validation", fake)
    assert main(["validate", "--quick", "--out", str(tmp_path / "rep"), "--jobs", "0"]) == 2
    assert seen["jobs"] == 0 and seen["quick"] and "--jobs 0" in seen["command"]
    assert main(["validate", "--out", str(tmp_path / "rep"), "--jobs", "-1"]) == 2
    assert "--jobs" in capsys.readouterr().err


# ------------------------------------------------ --optimizer, --momentum, --noise-variance
def test_optimizer_flags_mistakes_are_one_line_before_any_computation(tmp_path, capsys,
                                                                      monkeypatch):
    import importlib

    for mod, name in (("curve", "loss_curve"), ("compute_optimal", "compute_optimal"),
                      ("compute_optimal", "optimizer_for_model")):
        monkeypatch.setattr(importlib.import_module(f"volterra_sgd.{mod}"), name,
                            _fail_if_called)
    curve = ["curve", "--alpha", "1", "--beta", "0.7", "--d", "50"]
    co = ["compute-optimal", "--alpha", "0.7", "--beta", "0.7", "--out", str(tmp_path / "co")]
    for argv, needle in (
            (curve + ["--momentum", "0.9"], "--momentum is only used"),
            (curve + ["--optimizer", "dana-constant", "--momentum", "0.5"], "--momentum"),
            (curve + ["--optimizer", "dana-decaying", "--learning-rate", "0.1"],
             "--learning-rate does not apply"),
            (curve + ["--optimizer", "adam"], "invalid choice"),
            (curve + ["--optimizer", "heavy-ball", "--momentum", "1"], "momentum in [0, 1)"),
            (curve + ["--noise-variance", "-0.1"], ">= 0"),
            (["curve", "--spectrum", __file__, "--d", "5", "--noise-variance", "0.1"],
             "--noise-variance needs a PLRF"),
            (["curve", "--spectrum", __file__, "--d", "5", "--optimizer", "dana-decaying"],
             "needs a PLRF"),
            (co + ["--optimizer", "sgd", "--momentum", "0.5"], "--momentum is only used"),
            (co + ["--optimizer", "nesterov", "--momentum", "x"], "expected a number")):
        code = main(argv)
        err = capsys.readouterr().err.strip()
        assert code == 2, argv
        assert needle in err and "\n" not in err, (argv, err)


def test_curve_with_optimizer_momentum_and_noise(tmp_path, capsys):
    out = tmp_path / "hb.npz"
    code = main(["curve", "--alpha", "1.0", "--beta", "0.7", "--d", "50", "--max-iter", "1e4",
                 "--points", "15", "--optimizer", "heavy-ball", "--momentum", "0.8",
                 "--noise-variance", "0.02", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "HeavyBall" in text and "total_loss" in text and "sigma^2=0.02" in text
    c = vs.load_curve(out)
    model = vs.PLRF(1.0, 0.7, 500, 50, noise_variance=0.02)
    opt = vs.HeavyBall((1 - 0.8) * model.reference_learning_rate(0.5), 0.8)
    ref = vs.loss_curve(model, c.r, optimizer=opt)
    np.testing.assert_array_equal(c.loss, ref.loss)
    with np.load(out) as z:
        np.testing.assert_array_equal(z["total_loss"], ref.loss + 0.02)
    # CSV too, and the noiseless default keeps the old columns
    main(["curve", "--alpha", "1.0", "--beta", "0.7", "--d", "50", "--iterations", "0", "10",
          "--optimizer", "nesterov", "--learning-rate", "0.01", "--noise-variance", "0.02",
          "--out", str(tmp_path / "n.csv")])
    assert "total_loss" in (tmp_path / "n.csv").read_text().splitlines()[0]
    assert "Nesterov(learning_rate=0.01, momentum=0.9" in capsys.readouterr().out
    main(["curve", "--alpha", "1.0", "--beta", "0.7", "--d", "50", "--iterations", "0", "10",
          "--optimizer", "dana-constant", "--out", str(tmp_path / "d.csv")])
    assert "total_loss" not in (tmp_path / "d.csv").read_text().splitlines()[0]
    assert "DANA(" in capsys.readouterr().out


def test_compute_optimal_with_optimizer(tmp_path, capsys):
    import json

    from volterra_sgd.compute_optimal import load_compute_optimal

    out = tmp_path / "co"
    code = main(["compute-optimal", "--alpha", "1.0", "--beta", "0.7", "--d-min", "16",
                 "--d-max", "64", "--points", "5", "--max-flops", "1e6", "--n-boot", "20",
                 "--jobs", "1", "--no-chinchilla", "--no-plots", "--optimizer", "heavy-ball",
                 "--momentum", "0.5", "--out", str(out)])
    assert code == 0
    assert "optimizer heavy-ball" in capsys.readouterr().out
    co = load_compute_optimal(out / "result.npz")
    assert co.optimizer == "heavy-ball" and co.sweep.params["momentum"] == 0.5
    assert json.loads((out / "compute_optimal.json").read_text())["optimizer"] == "heavy-ball"
    assert json.loads((out / "frontier.csv.json").read_text())["optimizer"] == "heavy-ball"
