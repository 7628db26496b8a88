"""MLflow conventions against a real SQLite store."""

import pytest

from benchmark.tracking import RunTracker, flatten, tracking_uri


def test_tracking_uri_defaults_to_sqlite_under_results_and_honours_the_env(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(tmp_path / "results") == f"sqlite:///{tmp_path / 'results' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere.db")
    assert tracking_uri(tmp_path) == "sqlite:////elsewhere.db"


def test_a_run_is_created_logged_reopened_and_relogging_is_idempotent(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = tracking_uri(tmp_path)
    tracker = RunTracker(uri, "clip", "sac", 3)
    run_id = tracker.start(None, {"arm": "sac", "seed": "3"}, {"loop.t0": "8"})
    tracker.log([("test/metric", 0.25, 0), ("test/metric", 0.5, 40)])
    tracker.finish()

    again = RunTracker(uri, "clip", "sac", 3)
    assert again.start(run_id, {}, {}) == run_id
    again.log([("test/metric", 0.25, 0), ("test/metric", 0.5, 40), ("test/metric", 0.75, 80)])
    again.finish()

    run = again.client.get_run(run_id)
    assert run.info.run_name == "sac-seed3" and run.info.status == "FINISHED"
    assert run.data.tags["arm"] == "sac" and run.data.params["loop.t0"] == "8"
    history = again.client.get_metric_history(run_id, "test/metric")
    assert sorted((m.step, m.value) for m in history) == [(0, 0.25), (40, 0.5), (80, 0.75)]
    experiment = again.client.get_experiment_by_name("rls3-clip")
    assert experiment is not None and experiment.experiment_id == run.info.experiment_id


def test_flatten_makes_dotted_keys() -> None:
    assert flatten({"loop": {"t0": 8, "eta": 0.5}, "seeds": (0, 1)}) == {
        "loop.t0": "8",
        "loop.eta": "0.5",
        "seeds": "(0, 1)",
    }


@pytest.mark.parametrize("model", ["clip", "paligemma"])
def test_one_experiment_per_model(tmp_path, monkeypatch, model) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tracker = RunTracker(tracking_uri(tmp_path), model, "random", 0)
    assert tracker.client.get_experiment(tracker.experiment_id).name == f"rls3-{model}"


def test_metric_rows_step_by_samples_and_fine_tuning_step_and_drop_non_finite() -> None:
    from benchmark.tracking import metric_rows

    iterations = [{"iteration": 1, "generated_samples": 64, "test/metric": 0.5, "x": float("nan")}]
    episodes = [
        {"generated_total": 40, "j1": 1.0, "j2": 0.25, "valid": 30, "steps": 40, "hardness": 2.0}
    ]
    losses = [{"finetune_step": 3, "loss": 0.7}, {"finetune_step": 4, "val_inner": 0.6}]
    rows = metric_rows(iterations, episodes, losses)
    assert ("test/metric", 0.5, 64) in rows and ("iteration", 1.0, 64) in rows
    assert not any(key == "x" for key, _, _ in rows)  # NaN: not logged
    assert ("episode/valid_rate", 0.75, 40) in rows and ("episode/hardness", 2.0, 40) in rows
    assert ("finetune/loss", 0.7, 3) in rows and ("val/metric_inner", 0.6, 4) in rows
    assert len(rows) == 3 + 4 + 2
