"""Feedback events (like / dislike / watched) with real Spark: parsing, quarantine,
pending events for unknown users or items, their effect on training data, and a dislike's
effect on the top-N against the same run without it (through the DAG:
tests/e2e/test_recommendations_dag.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from reco.data import feedback, formats, ingest
from reco.data.synthetic import SyntheticSpec, write_dataset
from reco.data.transforms import to_als_types
from reco.modeling import recommend, train, train_data
from reco.modeling.ranking import Candidate
from reco.runs import RunFolder
from reco.validation import validate

INBOX = Path(__file__).resolve().parent.parent / "fixtures" / "feedback"


@pytest.fixture(scope="module")
def ingested(spark, tmp_path_factory) -> Path:
    """Ratings of users 1..5 x items 1..20, plus the fixture inbox."""
    run_dir = tmp_path_factory.mktemp("feedback_run")
    lines = [
        f"{u}\t{i}\t{1 + (u + i) % 5}\t{1_600_000_000 + i}\n"
        for u in range(1, 6)
        for i in range(1, 21)
    ]
    (run_dir / "u.data").write_text("".join(lines))
    ingest.run(spark, run_dir, formats.detect_source(run_dir / "u.data"), INBOX)
    return run_dir


def test_events_are_parsed_quarantined_or_kept_pending(ingested: Path) -> None:
    manifest = json.loads((RunFolder(ingested).manifest).read_text())["feedback"]
    assert manifest["files"] == 2 and manifest["lines"] == 14
    applied = pd.read_parquet(RunFolder(ingested).feedback).sort_values(["user_id", "item_id"])
    assert list(map(tuple, applied[["user_id", "item_id", "event", "ts"]].to_numpy())) == [
        (1, 10, "like", 1_700_000_000),
        (1, 11, "dislike", 1_700_000_000),  # ISO-8601 time, same instant
        (2, 10, "watched", 1_700_000_100),  # the later of two identical events
        (3, 13, "dislike", 1_700_000_200),  # from the CSV file (Windows line endings)
        (3, 14, "watched", 1_700_000_400),
    ]
    pending = pd.read_parquet(RunFolder(ingested).feedback_pending)
    assert sorted(zip(pending["user_id"], pending["item_id"], strict=True)) == [
        (3, 9999),  # unknown item
        (999, 10),  # unknown user
    ]
    quarantine = pd.read_parquet(RunFolder(ingested).feedback_quarantine)
    assert quarantine.groupby("reason").size().to_dict() == {
        "duplicate_superseded": 1,
        "invalid_event": 1,
        "invalid_user_id": 2,
        "malformed_json": 1,
        "timestamp_in_future": 1,
        "wrong_field_count": 1,
    }
    assert "3,15,like" in set(quarantine["raw"])
    assert manifest["applied_by_event"] == {"like": 1, "dislike": 2, "watched": 2}
    assert manifest["pending_unknown_user_or_item"] == 2


def test_feedback_suite_runs_in_validate(spark, ingested: Path) -> None:
    validate.run(spark, ingested, min_rows=10, max_quarantine_share=0.01)
    summary = json.loads((RunFolder(ingested).validation).read_text())
    fb = next(s for s in summary["suites"] if s["suite"] == "feedback")
    assert fb["success"] and fb["evaluated"] == 13


def test_feedback_mapping_for_the_ranking_model(spark) -> None:
    ratings = to_als_types(
        spark.createDataFrame(
            [(1, 1, 2.0), (1, 2, 4.0), (1, 3, 3.0), (2, 1, 5.0)], ["user_id", "item_id", "rating"]
        )
    )
    events = spark.createDataFrame(
        [
            (1, 1, "like", 10),  # rated 2, liked: raised to the top of the scale
            (1, 2, "dislike", 10),  # removed
            (1, 4, "watched", 10),  # unrated, watched: mid-scale signal
            (2, 5, "like", 10),  # unrated, liked: top of the scale
            (2, 1, "dislike", 5),
            (2, 1, "like", 20),  # the later event wins: kept and raised
        ],
        ["user_id", "item_id", "event", "ts"],
    )
    out = feedback.apply_to_ranking_data(ratings, events, (1.0, 5.0)).toPandas()
    got = {(r.user_id, r.item_id): r.rating for r in out.itertuples()}
    assert got == {(1, 1): 5.0, (1, 3): 3.0, (1, 4): 3.0, (2, 1): 5.0, (2, 5): 5.0}


# --- a dislike against a control run ----------------------------------------------------
TOP_N = 5
# EASE: closed form, so two runs on the same signals fit exactly the same model.
EASE = Candidate("ease", {"lambda": 10.0})


def lists_of(spark, data: Path, run_dir: Path, inbox: Path | None = None) -> dict[int, list[int]]:
    """What a feedback event goes through, on ``data`` with the feedback ``inbox``: the
    ingest step (events read, checked, kept), the train step's final refit (the published
    model, fitted on the ratings adjusted by the events; its other phases, the baselines and
    held-out scores, never read feedback) and the recommend step (rated, watched and
    disliked items excluded). Each user's published items, best first."""
    ingest.run(spark, run_dir, formats.detect_source(data), inbox)
    d = train_data.split_holdout(train_data.read_ratings(spark, run_dir), 0.2, 42, run_dir)
    train.final_refit(spark, d, EASE, 42, run_dir)
    d.unpersist()
    recommend.run(spark, run_dir, top_n=TOP_N, similar_k=2)
    recs = pd.read_parquet(RunFolder(run_dir).recommendations).sort_values(["user_id", "rank"])
    return recs.groupby("user_id")["item_id"].apply(list).to_dict()


def test_a_dislike_removes_an_item_the_same_run_without_it_recommends(
    spark, tmp_path_factory
) -> None:
    data = tmp_path_factory.mktemp("dislike-data")
    write_dataset(data, SyntheticSpec(n_users=40, n_items=60, mean_ratings_per_user=15, seed=7))
    control = lists_of(spark, data, tmp_path_factory.mktemp("control"))
    user = min(control)
    item = control[user][0]  # the control run's first pick for this user
    inbox = tmp_path_factory.mktemp("dislike-inbox")
    (inbox / "events.csv").write_text(
        f"user_id,item_id,event,ts\n{user},{item},dislike,1700000000\n"
    )
    run_dir = tmp_path_factory.mktemp("disliked")
    disliked = lists_of(spark, data, run_dir, inbox)

    manifest = json.loads(RunFolder(run_dir).manifest.read_text())["feedback"]
    assert manifest["applied_by_event"] == {"dislike": 1}
    assert item not in disliked[user] and len(disliked[user]) == TOP_N
    assert disliked[user][: TOP_N - 1] == control[user][1:]  # the rest move up one place
    assert {u: v for u, v in disliked.items() if u != user} == {
        u: v for u, v in control.items() if u != user
    }
