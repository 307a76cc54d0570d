"""The README's "Python API" block runs as written (with the test-sized model and data), so it cannot rot."""

import os
import re

from conftest import ROOT, SMALL_MODEL


def _python_api_block():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    match = re.search(r"<!-- python-api -->\n```python\n(.*?)```", text, re.S)
    assert match, "README.md has no <!-- python-api --> block"
    return match.group(1)


def test_readme_python_api_block_runs(tmp_path, tiny_data, monkeypatch, capsys):
    import electra_tf.config

    real = electra_tf.config.load_config
    monkeypatch.setattr(electra_tf.config, "load_config",
                        lambda name, overrides=(): real(name, [*SMALL_MODEL, f"data.path={tiny_data}", *overrides]))
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(_python_api_block(), "README.md:python-api", "exec"), namespace)  # noqa: S102 - our own README
    out = capsys.readouterr().out
    assert "100 steps, generator loss" in out and "held-out RTD: F1" in out
    assert namespace["run"].steps.step.numpy() == 100
    for name in ("discriminator", "generator"):
        assert os.path.isfile(tmp_path / "runs" / "api" / "export" / name / "saved_model.pb")
