"""Research tools: the searches, the resumable ledger, the experiment grids and the plots."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from electra_tf.research import experiments, search, sweep
from electra_tf.research.ledger import Ledger
from electra_tf.research.plots import plot_runs
from electra_tf.research.trials import PretrainRunner, format_value, score_of, summarize_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- searches
def test_golden_section_finds_the_maximum_of_a_unimodal_function_within_budget():
    calls = []

    def f(x):
        calls.append(x)
        return -(x - 1.3) ** 2

    result = search.golden_section_max(f, -2.0, 4.0, max_evals=25)
    assert len(calls) == 25
    # After 25 calls the bracket is 6 * 0.618**23 wide, far below the tolerance.
    assert result.best_x == pytest.approx(1.3, abs=1e-3)
    assert result.history == [(x, -(x - 1.3) ** 2) for x in calls]


def test_golden_section_treats_a_diverged_region_as_worst():
    # log10(lr) in [-5, -2]: a peak at -3.5, divergence above -2.6.
    result = search.golden_section_max(lambda x: -math.inf if x > -2.6 else -(x + 3.5) ** 2, -5.0, -2.0, 12)
    assert result.best_x == pytest.approx(-3.5, abs=0.05)


def test_golden_section_rejects_a_bad_interval_or_budget():
    with pytest.raises(ValueError, match="lo=2.0, hi=1.0"):
        search.golden_section_max(lambda x: x, 2.0, 1.0, 5)
    with pytest.raises(ValueError, match="got 0"):
        search.golden_section_max(lambda x: x, 0.0, 1.0, 0)


def test_growth_stops_at_the_first_run_that_does_not_improve():
    scores = {1.0: 0.5, 2.0: 0.6, 4.0: 0.7, 8.0: 0.65, 16.0: 0.9}
    result = search.grow_until_worse(scores.get, 1.0, 2.0, max_evals=10)
    assert (result.best_x, result.reason) == (4.0, "no improvement")
    assert [x for x, _ in result.history] == [1.0, 2.0, 4.0, 8.0]  # 16 is never tried


def test_growth_stops_at_divergence_and_respects_the_budget():
    result = search.grow_until_worse(lambda x: None if x > 3 else x, 1.0, 2.0, max_evals=10)
    assert (result.best_x, result.reason) == (2.0, "diverged")
    result = search.grow_until_worse(lambda x: x, 1.0, 2.0, max_evals=3)
    assert (result.best_x, result.reason, len(result.history)) == (4.0, "budget", 3)
    assert search.grow_until_worse(lambda x: None, 1.0, 2.0, 3).best_x is None
    with pytest.raises(ValueError, match="factor must be > 1, got 0.5"):
        search.grow_until_worse(lambda x: x, 1.0, 0.5, 3)


# ---------------------------------------------------------------- ledger and sweep
class FakeTrials:
    """A trial function with a known landscape: unstable above d_lr 5e-3, score peaks at d 4e-3, g 1e-4."""

    def __init__(self, interrupt_at=None):
        self.calls, self.interrupt_at = [], interrupt_at

    def __call__(self, name, spec):
        if self.interrupt_at is not None and len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        self.calls.append(name)
        d, g = spec["train.discriminator_lr"], spec["train.generator_lr"]
        if d > 5e-3:
            return {"status": "diverged", "exit_code": 3}
        auc = 0.9 - 0.02 * (math.log2(d / 4e-3)) ** 2 - 0.05 * (math.log10(g / 1e-4)) ** 2
        # The run's own held-out RTD loss is lowest at d 2e-3 (a landscape unlike the fair AUC's).
        loss = 0.3 + 0.05 * (math.log2(d / 2e-3)) ** 2
        return {"status": "ok", "exit_code": 0, "rtd_auc": auc, "eval_disc_loss": loss}


def sweep_kwargs():
    return dict(metric="rtd_auc", max_trials=7, disc_trials=3, disc_lr_start=1e-3, growth=2.0,
                fixed_gen_lr=1e-4, gen_lr_range=(1e-5, 1e-3))


def test_sweep_follows_the_roadmap_on_a_known_landscape(tmp_path):
    fake = FakeTrials()
    outcome = sweep.run_sweep(Ledger(str(tmp_path)), fake, **sweep_kwargs())
    assert outcome.discriminator_lr == 4e-3  # 1e-3, 2e-3, 4e-3 all improve; the budget of 3 ends phase 1
    assert outcome.generator_lr == pytest.approx(1e-4, rel=0.35)
    assert len(fake.calls) == 7
    paths = sweep.write_report(outcome, str(tmp_path), "rtd_auc")
    for key in ("disc_png", "gen_png"):
        with open(paths[key], "rb") as f:
            assert f.read(8) == PNG_MAGIC
    with open(paths["csv"], encoding="utf-8") as f:
        assert f.readline().startswith("trial,phase,discriminator_lr,generator_lr,status,score")


def test_phase_one_stops_at_the_divergence_guard(tmp_path):
    fake = FakeTrials()
    kwargs = {**sweep_kwargs(), "disc_trials": 5, "disc_lr_start": 2e-3}
    outcome = sweep.run_sweep(Ledger(str(tmp_path)), fake, **kwargs)
    assert outcome.phase1.reason == "diverged"  # 2e-3, 4e-3, then 8e-3 diverges
    assert outcome.discriminator_lr == 4e-3
    assert [r["status"] for r in outcome.rows[:3]] == ["ok", "ok", "diverged"]


def test_phase_one_can_stop_when_the_held_out_rtd_loss_stops_falling(tmp_path):
    fake = FakeTrials()
    kwargs = {**sweep_kwargs(), "disc_trials": 4, "disc_metric": "eval_disc_loss"}
    outcome = sweep.run_sweep(Ledger(str(tmp_path)), fake, **kwargs)
    # 1e-3 (loss 0.35), 2e-3 (0.30), 4e-3 (0.35: worse) stops the growth; 2e-3 is kept.
    assert (outcome.phase1.reason, outcome.discriminator_lr) == ("no improvement", 2e-3)
    assert [r["score"] for r in outcome.rows[:3]] == pytest.approx([-0.35, -0.3, -0.35])
    assert {r["metric"] for r in outcome.rows[3:]} == {"rtd_auc"}
    # The best score is the fair AUC of a trial at d 2e-3, phase 1's or phase 2's.
    assert outcome.best_score == max(r["rtd_auc"] for r in outcome.rows if r["discriminator_lr"] == 2e-3)
    assert len(fake.calls) == 3 + 3  # phase 2 keeps its own budget (7 - 4), unused phase 1 trials are not moved


def test_a_rerun_of_a_finished_sweep_runs_no_trial(tmp_path):
    first = sweep.run_sweep(Ledger(str(tmp_path)), FakeTrials(), **sweep_kwargs())
    fake, ledger = FakeTrials(), Ledger(str(tmp_path))
    second = sweep.run_sweep(ledger, fake, **sweep_kwargs())
    assert fake.calls == [] and ledger.runs == []
    assert (second.discriminator_lr, second.generator_lr, second.best_score) == (
        first.discriminator_lr, first.generator_lr, first.best_score)


def test_an_interrupted_sweep_resumes_with_only_the_missing_trials(tmp_path):
    interrupted = FakeTrials(interrupt_at=4)
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(Ledger(str(tmp_path)), interrupted, **sweep_kwargs())
    resumed = FakeTrials()
    outcome = sweep.run_sweep(Ledger(str(tmp_path)), resumed, **sweep_kwargs())
    assert len(interrupted.calls) == 4 and len(resumed.calls) == 3
    assert not set(interrupted.calls) & set(resumed.calls)
    reference = sweep.run_sweep(Ledger(str(tmp_path / "fresh")), FakeTrials(), **sweep_kwargs())
    assert (outcome.discriminator_lr, outcome.generator_lr) == (reference.discriminator_lr, reference.generator_lr)


def test_ledger_refuses_a_trial_recorded_with_another_spec(tmp_path):
    ledger = Ledger(str(tmp_path))
    ledger.run("t", {"train.generator_lr": 1e-4}, lambda name, spec: {"status": "ok"})
    with pytest.raises(ValueError, match="was run with"):
        Ledger(str(tmp_path)).run("t", {"train.generator_lr": 2e-4}, lambda name, spec: {"status": "ok"})


def test_budget_split_names_bad_values():
    assert sweep.split_budget(7) == (3, 4)
    with pytest.raises(ValueError, match="got 1"):
        sweep.split_budget(1)
    with pytest.raises(ValueError, match=r"\[1, 5\].*got 6"):
        sweep.split_budget(6, 6)


def test_score_of_a_diverged_trial_is_minus_infinity():
    assert score_of({"status": "diverged"}, "rtd_auc") == -math.inf
    assert score_of({"status": "ok", "rtd_auc": 0.7}, "rtd_auc") == 0.7
    with pytest.raises(KeyError, match="rtd_f1"):
        score_of({"status": "ok", "rtd_auc": 0.7}, "rtd_f1")


# ---------------------------------------------------------------- grids and trial commands
def test_fig3_grid_sweeps_lambda_in_joint_mode_and_generator_lr_in_decoupled_mode():
    trials = experiments.fig3_trials()
    joint = [t for t in trials if t.meta["panel"] == "joint"]
    decoupled = [t for t in trials if t.meta["panel"] == "decoupled"]
    assert [t.spec["train.disc_weight"] for t in joint] == [1.0, 10.0, 50.0, 200.0]
    assert all(t.spec["train.mode"] == "joint" and t.spec["embedding_sharing"] == "shared" for t in joint)
    assert len({t.spec["train.learning_rate"] for t in joint}) == 1
    assert [t.spec["train.generator_lr"] for t in decoupled] == list(experiments.GEN_LRS)
    assert {t.spec["train.discriminator_lr"] for t in decoupled} == {experiments.FIG3_DISC_LR}
    assert len({t.name for t in trials}) == len(trials)
    with pytest.raises(ValueError, match=r"lambdas.*\[1.0, -2.0\]"):
        experiments.fig3_trials(lambdas=[1.0, -2.0])


def test_gen_size_grid_covers_depth_and_width_in_both_modes():
    trials = experiments.gen_size_trials(depths=(1, 2, 4), widths=(16, 32, 64))
    shapes = {(t.meta["mode"], t.meta["depth"], t.meta["width"]) for t in trials}
    assert len(trials) == len(shapes) == 10  # (2, 32) is shared by both axes
    assert {t.spec["generator.intermediate_size"] for t in trials} == {64, 128, 256}


def test_masking_experiment_trains_each_strategy_and_scores_it_against_one_generator(tmp_path):
    seen = []

    def fake(name, spec):
        seen.append((name, spec.get("data.masking")))
        return {"status": "ok", "rtd_f1": 0.3, "rtd_auc": 0.7, "eval_gen_accuracy": 0.2}

    rows = experiments.reproduce("masking", str(tmp_path), steps=10, trial_fn=fake)
    assert [r["masking"] for r in rows] == ["token", "whole_word", "span"]
    assert seen[0] == ("standalone", None)  # the fixed generator masks by token
    assert {spec for _, spec in seen[1:]} == {"token", "whole_word", "span"}
    with open(tmp_path / "masking.png", "rb") as f:
        assert f.read(8) == PNG_MAGIC


def test_trial_commands_parse_back_to_the_same_values():
    runner = PretrainRunner("/tmp/out", steps=200, batch_size=16)
    spec = experiments.decoupled_spec(1e-5, 1.5e-3)
    cmd = runner.command("t", spec)
    values = dict(item.split("=", 1) for item in cmd[cmd.index("--set") + 1:])
    assert yaml.safe_load(values["train.generator_lr"]) == 1e-5  # YAML 1.1 reads "1e-05" as a string
    assert yaml.safe_load(values["train.discriminator_lr"]) == 1.5e-3
    assert yaml.safe_load(values["train.max_steps"]) == 200 and values["train.eval_every"] == "200"
    assert "--no_export" in cmd and cmd[cmd.index("--model_dir") + 1] == os.path.join("/tmp/out", "trials", "t")
    for value in (3.0, 1e-4, 2.5e-10, 7, True):
        assert yaml.safe_load(format_value(value)) == value


def test_reproduce_writes_csv_and_plot_and_resumes_from_the_ledger(tmp_path):
    def fake(name, spec):
        x = spec.get("train.generator_lr", 1e-4)
        return {"status": "ok", "eval_gen_accuracy": 0.1 + 0.02 * math.log10(x / 1e-5)}

    rows = experiments.reproduce("fig3", str(tmp_path), steps=10, trial_fn=fake)
    assert len(rows) == 8 and os.path.exists(tmp_path / "results.csv")
    with open(tmp_path / "fig3.png", "rb") as f:
        assert f.read(8) == PNG_MAGIC

    def must_not_run(name, spec):
        raise AssertionError(f"trial {name} was rerun")

    assert experiments.reproduce("fig3", str(tmp_path), steps=10, trial_fn=must_not_run) == rows


# ---------------------------------------------------------------- metrics and plots
def write_metrics(model_dir, steps=5):
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "metrics.jsonl"), "w", encoding="utf-8") as f:
        for step in range(1, steps + 1):
            f.write(json.dumps({"step": step * 10, "gen_loss": 8.0 / step, "disc_loss": 0.5 / step,
                                "gen_accuracy": 0.01 * step, "disc_f1": 0.1 * step}) + "\n")
        f.write(json.dumps({"step": steps * 10, "split": "eval", "gen_accuracy": 0.3, "disc_auc": 0.8}) + "\n")


def test_summarize_metrics_takes_the_last_train_and_eval_rows(tmp_path):
    write_metrics(str(tmp_path))
    summary = summarize_metrics(str(tmp_path / "metrics.jsonl"))
    assert summary["steps_done"] == 50 and summary["gen_accuracy"] == pytest.approx(0.05)
    assert summary["eval_gen_accuracy"] == 0.3 and summary["eval_disc_auc"] == 0.8


def test_plot_runs_script_draws_several_runs_and_names_a_missing_metric(tmp_path):
    for name in ("a", "b"):
        write_metrics(str(tmp_path / name))
    out = tmp_path / "curves.png"
    assert plot_runs([str(tmp_path / "a"), str(tmp_path / "b")], str(out), metrics=["gen_loss", "disc_auc"]) == \
        str(out)
    with open(out, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    with pytest.raises(ValueError, match="'nope' is in none of.*gen_loss"):
        plot_runs([str(tmp_path / "a")], str(out), metrics=["nope"])
    script = [sys.executable, os.path.join(ROOT, "scripts", "plot_runs.py"), str(tmp_path / "a"), "--out",
              str(tmp_path / "cli.png"), "--metrics", "gen_loss,disc_loss"]
    done = subprocess.run(script, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert os.path.getsize(tmp_path / "cli.png") > 1000
    done = subprocess.run(script[:2] + [str(tmp_path / "missing")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no metrics.jsonl in" in done.stderr


@pytest.mark.slow
def test_a_real_trial_runs_as_a_subprocess_and_is_not_rerun(tmp_path):
    runner = PretrainRunner(str(tmp_path), steps=6, batch_size=4)
    ledger = Ledger(str(tmp_path))
    spec = experiments.decoupled_spec(1e-4, 1e-3)
    result = ledger.run("t", spec, runner)
    assert result["status"] == "ok" and result["exit_code"] == 0 and result["steps_done"] == 6
    assert 0.0 <= result["eval_gen_accuracy"] <= 1.0 and "eval_disc_auc" in result
    with open(tmp_path / "trials" / "t" / "config.yaml", encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    assert cfg["train"]["generator_lr"] == 1e-4 and cfg["train"]["max_steps"] == 6
    again = Ledger(str(tmp_path))
    assert again.run("t", spec, runner) == result and again.runs == []


def test_ledger_refuses_a_rerun_with_other_trial_sizes(tmp_path):
    Ledger(str(tmp_path), context={"steps": 150}).run("t", {}, lambda name, spec: {"status": "ok"})
    assert Ledger(str(tmp_path), context={"steps": 150}).get("t", {}) == {"status": "ok"}
    with pytest.raises(ValueError, match="run with {'steps': 150}, not {'steps': 300}"):
        Ledger(str(tmp_path), context={"steps": 300})


# ---------------------------------------------------------------- the scripts' exit codes
@pytest.fixture
def restore_sigterm():
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_research_commands_map_their_endings_to_exit_codes(restore_sigterm, capsys):
    from electra_tf.research.cli import run_command
    from electra_tf.research.trials import TrialFailed

    assert run_command(lambda: "rows") == (0, "rows")

    def bad():
        raise ValueError("max_trials must be an integer >= 2, got 1")

    assert run_command(bad) == (2, None)
    assert "error: max_trials must be an integer >= 2, got 1" in capsys.readouterr().err

    def failed():
        raise TrialFailed("trial d1.00e-03_g1.00e-04 exited 1")

    assert run_command(failed) == (1, None)

    def terminated():  # a SIGTERM to the sweep becomes a resumable interruption
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        return "not reached"

    assert run_command(terminated) == (75, None)
    assert "run the same command again to resume" in capsys.readouterr().err


def test_sweep_script_refuses_bad_settings_before_training_anything(tmp_path):
    out = tmp_path / "sweep"
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "sweep.py"), "--out", str(out), "--gen_lr_min", "1e-3",
           "--gen_lr_max", "1e-4"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "gen_lr_range must be (low, high) with 0 < low < high, got (0.001, 0.0001)" in done.stderr
    assert not (out / "trials").exists()
