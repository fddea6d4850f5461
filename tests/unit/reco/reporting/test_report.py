"""The run report as a reviewer reads it: rendered from in-memory data (what the warehouse
and the run folder hold, no Spark, no database), parsed, and checked in reading order."""

from __future__ import annotations

import base64
import copy
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest

from reco import config
from reco.reporting import facts, performance, report, sections

RUN_ID = "manual__2026-11-26T23:22:16+00:00"
RUN_DIR = config.RUNS_DIR / "manual__2026-11-26T23_22_16_00_00"
T0 = datetime(2026, 11, 26, 23, 22, 16, tzinfo=UTC)
CHAMPION = "als-20261126T231946Z-0084a2"


def cand(family: str, ndcg: list[float], **params: Any) -> dict[str, Any]:
    mean = sum(ndcg) / len(ndcg)
    return {
        "family": family,
        **params,
        "mean_ndcg": mean,
        "std_ndcg": 0.0028,
        "mean_precision": 0.3093,
        "fold_ndcg": ndcg,
        "fold_precision": [0.31, 0.31, 0.31],
    }


ALS = {"family": "als", "rank": 32, "regParam": 0.2, "alpha": 0.5, "maxIter": 8}
METRICS: dict[str, Any] = {
    "cv_folds": 3,
    "n_holdout": 20381,
    "holdout_fraction": 0.2,
    "model_family": "als",
    "rmse": 0.9055,
    "ndcg_at_k": 0.4523,
    "rating": {
        "rmse": 0.9055,
        "mae": 0.7173,
        "mpe": -10.07,
        "params": {"rank": 50, "regParam": 0.08, "residualRegParam": 0.15, "maxIter": 6},
        "cv_results": [],
    },
    "ranking": {
        "k": 10,
        "ndcg": 0.4523,
        "precision": 0.3830,
        "recall": 0.2411,
        "map": 0.3088,
        "catalogue_coverage": 0.2881,
        "user_coverage": 1.0,
        "family": "als",
        "params": ALS,
        "why": "als rank=32 regParam=0.2 alpha=0.5 maxIter=8 won the 3-fold CV of 3 candidates",
        "cv_results": [
            cand("ease", [0.3310, 0.3293, 0.3264], **{"lambda": 300.0}),
            cand(
                "als", [0.3389, 0.3442, 0.3452], **{k: v for k, v in ALS.items() if k != "family"}
            ),
            cand("als", [0.3010, 0.3020, 0.3030], rank=16, regParam=0.1, alpha=1.0, maxIter=8),
        ],
    },
    "baselines": {
        "global_mean": {"rmse": 1.1275, "mae": 0.9478, "mpe": -18.40},
        "bias": {"rmse": 0.9437, "mae": 0.7492, "mpe": -13.57},
        "most_popular": {
            "ndcg": 0.2169,
            "precision": 0.1928,
            "recall": 0.1147,
            "map": 0.1116,
            "catalogue_coverage": 0.0322,
            "user_coverage": 1.0,
        },
    },
    "champion": {
        "model_version": CHAMPION,
        "rating": {"rmse": 0.9010, "mae": 0.71, "mpe": -10.0},
        "ranking": {
            "ndcg": 0.4710,
            "precision": 0.39,
            "recall": 0.25,
            "map": 0.31,
            "catalogue_coverage": 0.29,
            "user_coverage": 1.0,
        },
    },
    "gate": {"publish": True, "reason": "beats the baselines and the champion"},
}
MANIFEST = {
    "source": {"ratings_path": "/data/ml-100k/u.data", "format": "ml-100k"},
    "n_ratings": 100000,
    "n_users": 943,
    "n_items": 1682,
    "n_rejected": 3,
    "rejected_by_reason": {"malformed": 2, "rating_out_of_range": 1},
}
SPARK = {
    "stages": 5,
    "tasks": 53,
    "stage_seconds": 4.1,
    "executor_run_ms": 2700,
    "gc_ms": 120,
    "shuffle_read_bytes": 4_000_000,
    "shuffle_write_bytes": 4_170_000,
    "memory_spill_bytes": 0,
    "disk_spill_bytes": 0,
    "input_rows": 100000,
    "output_rows": 0,
}


def timing(stage: str, phase: str, start: float, seconds: float, **details: Any) -> dict[str, Any]:
    """A ``reco.stage_timings`` row as psycopg2 returns it (details already a dict)."""
    started = T0 + timedelta(seconds=start)
    return {
        "stage": stage,
        "phase": phase,
        "started_at": started,
        "finished_at": started + timedelta(seconds=seconds),
        "seconds": seconds,
        "details": details,
    }


ROWS = [
    timing(
        "ingest",
        "airflow_task",
        0.0,
        23.0,
        state="success",
        try_number=1,
        operator="PythonOperator",
        queued_at=(T0 - timedelta(seconds=0.4)).isoformat(),
        queued_seconds=0.4,
    ),
    timing("ingest", "total", 1.0, 21.0),
    timing("ingest", "read", 1.0, 8.4, source="/data/ml-100k/u.data", rows=100000, spark=SPARK),
    timing("train", "total", 25.0, 72.0),
    timing("train", "cross_validation", 26.0, 56.0, folds=3, candidates=3, fits=9),
    *(
        timing(
            "train",
            f"cv_als_c0_fold{f}",
            26.0 + f,
            18.0 + f,
            fold=f,
            **ALS,
            ndcg=0.34 + f / 100,
            spark=SPARK,
        )
        for f in range(3)
    ),
    timing("train", "final_refit", 90.0, 5.6, rows=100000, **ALS, spark=SPARK),
    timing("publish", "copy_and_swap", 100.0, 0.1, rows=9430),
    timing("report", "render", 101.0, 1.0),
]
# Wall time of this run: 0 s to 102 s.
EARLIER = [
    # run_id, start (hours before this run), wall seconds, status
    ("r1", 5, 150.0, "published"),
    ("r2", 4, 130.0, "rejected"),
    ("r3", 3, 170.0, "published"),
    ("r4", 2, 20.0, None),  # failed before publish: not a comparable run
]
PERF = {
    "history": [
        {"stage": "ingest", "runs": 4, "avg_s": 20.0, "p90_s": 24.0, "max_s": 25.0},
        {"stage": "train", "runs": 4, "avg_s": 70.0, "p90_s": 80.0, "max_s": 90.0},
    ],
    "trends": [
        {
            "run_id": run_id,
            "run_start": T0 - timedelta(hours=hours),
            "wall_s": wall,
            "n_ratings": 100000,
            "status": status,
            "dataset": "/data/ml-100k/u.data",
            "cv_folds": 3,
            "rmse": 0.91,
            "ndcg": 0.45,
        }
        for run_id, hours, wall, status in EARLIER
    ]
    + [
        {
            "run_id": RUN_ID,
            "run_start": T0,
            "wall_s": 102.0,
            "n_ratings": 100000,
            "status": "published",
            "dataset": "/data/ml-100k/u.data",
            "cv_folds": 3,
            "rmse": 0.9055,
            "ndcg": 0.4523,
        }
    ],
    # Each stage's total per run, as stage_timings.sql "stage_trends" returns them: r4
    # failed in train (no publish total); this run's totals are those of ROWS.
    "stage_trends": [
        {
            "run_id": run_id,
            "run_start": T0 - timedelta(hours=hours),
            "stage": stage,
            "seconds": seconds,
            "offset_s": offset,
        }
        for run_id, hours, stages in (
            ("r1", 5, (("ingest", 0.5, 20.0), ("train", 24.0, 68.0), ("publish", 95.0, 1.0))),
            ("r2", 4, (("ingest", 0.5, 19.0), ("train", 24.0, 75.0), ("publish", 99.0, 1.1))),
            ("r3", 3, (("ingest", 0.5, 25.0), ("train", 26.0, 90.0), ("publish", 117.0, 0.9))),
            ("r4", 2, (("ingest", 0.5, 18.0), ("train", 19.0, 2.0))),
            (RUN_ID, 0, (("ingest", 1.0, 21.0), ("train", 25.0, 72.0))),
        )
        for stage, offset, seconds in stages
    ],
    "slowest": [
        {
            "step": "train",
            "phase": "cross_validation",
            "stage_id": 12,
            "name": "treeAggregate at ALS.scala:1234",
            "tasks": 20,
            "seconds": 3.2,
            "executor_run_ms": 5200,
            "gc_ms": 100,
            "shuffle_read_bytes": 1_000_000,
            "shuffle_write_bytes": 2_000_000,
            "spill_bytes": 0,
            "input_rows": 79619,
            "output_rows": 0,
        }
    ],
}
PUBLISHED_RUN = {
    "run_id": RUN_ID,
    "attempt": 1,
    "status": "published",
    "status_reason": None,
    "n_users": 943,
    "n_published": 9430,
}


class Page(HTMLParser):
    """The parts of a page the checks need: the order of its landmarks, every table as rows
    of cell texts (by class), the headline's text, links and preformatted text."""

    def __init__(self) -> None:
        super().__init__()
        self.landmarks: list[str] = []
        self.tables: list[tuple[str, list[list[str]]]] = []
        self.headline: list[str] = []
        self.links: list[tuple[str, str]] = []
        self.pre: list[str] = []
        self.start_tags: list[str] = []
        self._depth_in_headline = 0
        self._cell: list[str] | None = None
        self._text: list[str] | None = None
        self._tag = ""
        self._attrs: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.start_tags.append(tag)
        if self._depth_in_headline and tag == "section":
            self._depth_in_headline += 1
        if tag == "section":
            self.landmarks.append(f"section#{a.get('id')}")
            if a.get("id") == "headline":
                self._depth_in_headline = 1
        elif tag == "img":
            self.landmarks.append(f"img:{a.get('alt')}")
        elif tag == "table":
            self.landmarks.append(f"table.{a.get('class')}")
            self.tables.append((a.get("class") or "", []))
        elif tag == "tr":
            self.tables[-1][1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in ("h1", "h2", "h3", "pre", "a"):
            self._text, self._tag, self._attrs = [], tag, a

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == self._tag and self._text is not None:
            text = " ".join("".join(self._text).split())
            if tag in ("h1", "h2", "h3"):
                self.landmarks.append(f"{tag}:{text}")
            elif tag == "pre":
                self.pre.append("".join(self._text))
            elif tag == "a":
                self.links.append((text, self._attrs.get("href") or ""))
            self._text, self._tag = None, ""
        elif tag == "section" and self._depth_in_headline:
            self._depth_in_headline -= 1

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._text is not None:
            self._text.append(data)
        if self._depth_in_headline:
            self.headline.append(data)

    def table(self, cls: str) -> list[list[str]]:
        [rows] = [rows for c, rows in self.tables if c == cls]
        return rows

    def headline_text(self) -> str:
        return " ".join("".join(self.headline).split())


def render(**kwargs: Any) -> tuple[str, Page]:
    args: dict[str, Any] = {
        "run": PUBLISHED_RUN,
        "perf": PERF,
        "links": facts.links_for(RUN_DIR, data_docs=True, python="/venv/bin/python"),
        "users_served": 943,
    }
    args.update(kwargs)
    metrics = args.pop("metrics", METRICS)
    page = report.render_html(RUN_ID, MANIFEST, metrics, ROWS, **args)
    parsed = Page()
    parsed.feed(page)
    return page, parsed


@pytest.fixture(scope="module")
def published() -> tuple[str, Page]:
    return render()


REJECTED_METRICS = {
    **METRICS,
    "gate": {"publish": False, "reason": "nDCG 0.4523 is worse than the champion's 0.4710"},
}
REJECTED_RUN = {
    **PUBLISHED_RUN,
    "attempt": 2,
    "status": "rejected",
    "status_reason": "nDCG 0.4523 is worse than the champion's 0.4710 <script>alert(1)</script>",
    "n_published": 0,
}


@pytest.fixture(scope="module")
def rejected() -> tuple[str, Page]:
    return render(metrics=REJECTED_METRICS, run=REJECTED_RUN, users_served=None)


def test_the_headline_comes_first(published: tuple[str, Page]) -> None:
    _, page = published
    assert page.landmarks[0].startswith("h1:Recommendation run")
    assert page.landmarks[1] == "section#headline"
    # Nothing but the headline's own quality table before the timeline.
    assert page.landmarks[2:4] == ["table.quality", "h2:Where the time went"]
    assert page.landmarks[4] == "img:stage timeline"


def test_the_headline_says_published_why_and_what(published: tuple[str, Page]) -> None:
    _, page = published
    text = page.headline_text()
    assert text.startswith("Published: beats the baselines and the champion")
    assert "model als rank=32, regParam=0.2, alpha=0.5, maxIter=8" in text
    assert "won the 3-fold CV of 3 candidates" in text
    assert "users served 943 of 943 users (9,430 recommendations published)" in text
    # 102 s against the median of the three earlier runs that reached publish (150 s);
    # r4 (failed before publish) and this run itself are left out.
    assert (
        "wall time 102 s against a median of 150 s over 3 earlier runs on the same dataset "
        "with the same CV setting (-32%)"
    ) in text


def test_the_headline_puts_ndcg_and_rmse_beside_baselines_and_champion(
    published: tuple[str, Page],
) -> None:
    _, page = published
    head, ndcg, rmse = page.table("quality")
    assert head == [
        "held-out",
        "this run",
        "global mean",
        "user+item bias",
        "most popular",
        f"champion {CHAMPION}",
    ]
    assert ndcg == ["nDCG@10", "0.4523", "", "", "0.2169", "0.4710"]
    assert rmse == ["RMSE", "0.9055", "1.1275", "0.9437", "", "0.9010"]


def test_a_rejected_run_says_so_and_the_reason_is_escaped(rejected: tuple[str, Page]) -> None:
    html, page = rejected
    text = page.headline_text()
    assert text.startswith("Rejected: nDCG 0.4523 is worse than the champion's 0.4710")
    assert "<script>alert(1)</script>" in text  # shown as text ...
    assert "script" not in page.start_tags  # ... never run
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert f"users served none from this run: readers keep the recommendations of {CHAMPION}" in (
        text
    )
    assert "Status from reco.model_runs, attempt 2" in text


def test_without_a_model_runs_row_the_gate_decides() -> None:
    _, page = render(metrics=REJECTED_METRICS, run=None, users_served=None)
    text = page.headline_text()
    assert text.startswith("Rejected: nDCG 0.4523 is worse than the champion's 0.4710")
    assert "the gate in metrics.json" in text
    # A run the gate let through but with no row: the page does not claim it was published.
    _, page = render(run=None, users_served=None)
    text = page.headline_text()
    assert text.startswith("Passed the gate: beats the baselines and the champion")
    assert "users served not recorded (no reco.model_runs row for this run)" in text


def test_the_sections_come_in_reading_order(published: tuple[str, Page]) -> None:
    _, page = published
    order = [
        "section#headline",
        "img:stage timeline",
        "table.stages",
        "h2:Over the last 5 runs",
        "h3:Each stage's seconds, run by run",
        "img:seconds of each stage, run by run, over the last 5 runs",
        "h3:Per stage: average, p90 and max",
        "img:stage seconds: average, p90 and max over the last runs, this run marked",
        "h3:Trends across runs",
        "img:trends across runs",
        "h2:Cross-validation (3 folds, 3 candidates)",
        "table.cv",
        "h2:Model",
        "h2:Data",
        "h2:Dig deeper",
    ]
    positions = [page.landmarks.index(mark) for mark in order]
    assert positions == sorted(positions)


def test_no_table_cell_holds_raw_json(published: tuple[str, Page]) -> None:
    _, page = published
    cells = [cell for _, rows in page.tables for row in rows for cell in row]
    assert cells
    assert not [c for c in cells if '{"' in c or "{'" in c or "}" in c]


def test_the_stage_table_gives_details_their_own_columns(published: tuple[str, Page]) -> None:
    _, page = published
    head, *rows = page.table("stages")
    assert head == [
        "stage",
        "phase",
        "seconds",
        "rows",
        "Spark tasks",
        "shuffle MB",
        "executor s",
        "notes",
    ]
    by_phase = {(r[0], r[1]): r for r in rows}
    assert by_phase[("ingest", "read")][2:7] == ["8.40", "100,000", "53", "8.17", "2.7"]
    assert "source /data/ml-100k/u.data" in by_phase[("ingest", "read")][7]
    task = by_phase[("ingest", "airflow_task")][7]
    assert task == "success · try 1 · PythonOperator · queued 0.4 s"
    # The three fold fits of one candidate are one row: seconds and Spark sums added up.
    folds = by_phase[("train", "cv_als_c0 × 3 folds")]
    assert folds[2:7] == ["57.00", "", "159", "24.51", "8.1"]
    assert folds[7].startswith("sum of 3 folds: 18.0 / 19.0 / 20.0 s · family als · rank 32")
    assert "nDCG 0.34 / 0.35 / 0.36" in folds[7]
    assert not [r for r in rows if "_fold" in r[1]]
    # Every stage appears as a plain cell (what the end-to-end test greps for).
    for stage in ("ingest", "train", "publish", "report"):
        assert [r for r in rows if r[0] == stage]


def test_the_cv_is_one_compact_table(published: tuple[str, Page]) -> None:
    _, page = published
    head, *rows = page.table("cv")
    assert head == [
        "family",
        "parameters",
        "mean nDCG@10 ± sd",
        "mean P@10",
        "nDCG@10 per fold",
    ]
    assert len(rows) == 3  # one row per candidate, best first
    assert rows[0] == [
        "★ als",
        "rank=32, regParam=0.2, alpha=0.5, maxIter=8",
        "0.3428 ± 0.0028",
        "0.3093",
        "0.3389 / 0.3442 / 0.3452",
    ]
    assert rows[1][:2] == ["ease", "lambda=300"]
    assert rows[2][:2] == ["als", "rank=16, regParam=0.1, alpha=1, maxIter=8"]
    assert [r for r in rows if r[0].startswith("★")] == [rows[0]]


def test_links_to_data_docs_and_the_spark_history_server(published: tuple[str, Page]) -> None:
    _, page = published
    docs = [href for text, href in page.links if text == "Data Docs of this run"]
    # Relative to the report: works from var/reports on disk and under /reco-reports/.
    assert docs == [f"data_docs/{RUN_DIR.name}/index.html"]
    [command] = page.pre
    assert "/venv/bin/python -c" in command
    assert f"spark.history.fs.logDirectory={config.SPARK_EVENTS_DIR}" in command
    assert "spark-class" in command and "org.apache.spark.deploy.history.HistoryServer" in command


def test_without_data_docs_the_page_says_so() -> None:
    html, page = render(links=facts.links_for(RUN_DIR, data_docs=False))
    assert not [t for t, _ in page.links if t == "Data Docs of this run"]
    assert "No Data Docs for this run" in html


def test_the_trend_tables_and_charts_are_kept(published: tuple[str, Page]) -> None:
    html, page = published
    assert page.table("history")[0] == ["stage", "runs", "avg s", "p90 s", "max s"]
    assert page.table("history")[2] == ["train", "4", "70.0", "80.0", "90.0"]
    assert [r[0] for r in page.table("trends")[1:]] == ["r1", "r2", "r3", "r4", RUN_ID]
    assert page.table("slowest")[1][:3] == [
        "train/cross_validation",
        "12",
        "treeAggregate at ALS.scala:1234",
    ]
    assert 'alt="stage seconds: average, p90 and max over the last runs, this run marked"' in html
    assert 'alt="trends across runs"' in html
    assert "Slowest Spark stages of this run" in html


def test_the_performance_section_renders_on_its_own() -> None:
    section = performance.render_section(copy.deepcopy(PERF))
    parsed = Page()
    parsed.feed(section)
    assert parsed.landmarks[:2] == ["section#history", "h2:Over the last 5 runs"]
    assert "<script" not in section and "Slowest Spark stages" in section


def test_earlier_wall_takes_runs_that_reached_publish_before_this_one() -> None:
    median, n = performance.earlier_wall(PERF["trends"], RUN_ID, T0)
    assert (median, n) == (150.0, 3)
    # A rebuilt older run compares with the runs before it only.
    assert performance.earlier_wall(PERF["trends"], "r3", T0 - timedelta(hours=3)) == (140.0, 2)
    assert performance.earlier_wall([], RUN_ID, T0) == (None, 0)


def test_the_headline_compares_only_runs_on_the_same_dataset_and_cv_setting() -> None:
    """A run on another dataset, or with another number of CV folds, is no comparison: the
    headline's median leaves them out, and says what it compared on."""
    trends = copy.deepcopy(PERF["trends"])
    trends[0]["dataset"] = "synthetic/run-1"  # r1 (150 s): another dataset
    trends[2]["cv_folds"] = 0  # r3 (170 s): fixed parameters, no CV
    like = {"dataset": "/data/ml-100k/u.data", "cv_folds": 3}
    assert performance.earlier_wall(trends, RUN_ID, T0, like) == (130.0, 1)
    head = sections.headline(MANIFEST, METRICS, ROWS, None, trends, RUN_ID, None)
    assert (head["median_wall_s"], head["n_earlier"]) == (130.0, 1)
    assert head["compared_on"] == like
    trends[1]["dataset"] = "other"
    head = sections.headline(MANIFEST, METRICS, ROWS, None, trends, RUN_ID, None)
    assert (head["median_wall_s"], head["n_earlier"]) == (None, 0)
    perf = {**PERF, "trends": trends}
    html = report.render_html(RUN_ID, MANIFEST, METRICS, ROWS, run=None, perf=perf)
    assert "no earlier run on the same dataset with the same CV setting to compare with" in html


def img_src(html: str, alt: str) -> str:
    [src] = re.findall(r'<img alt="' + re.escape(alt) + r'" src="([^"]*)"', html)
    return src


def test_each_stage_run_by_run_has_its_chart_under_history(published: tuple[str, Page]) -> None:
    html, page = published
    marks = page.landmarks
    heading = marks.index("h3:Each stage's seconds, run by run")
    chart = "img:seconds of each stage, run by run, over the last 5 runs"
    assert marks.index("section#history") < heading < marks.index(chart)
    assert marks[heading + 1] == chart  # the chart directly under its heading
    src = img_src(html, chart.removeprefix("img:"))
    assert base64.b64decode(src.removeprefix("data:image/png;base64,"))[:4] == b"\x89PNG"
    assert "No per-stage trend yet" not in html


def test_stage_series_puts_each_stage_in_pipeline_order_run_by_run() -> None:
    runs, stages, series = performance.stage_series(PERF["stage_trends"])
    assert runs == ["r1", "r2", "r3", "r4", RUN_ID]
    assert stages == ["ingest", "train", "publish"]
    assert series["ingest"] == [20.0, 19.0, 25.0, 18.0, 21.0]
    assert series["train"] == [68.0, 75.0, 90.0, 2.0, 72.0]
    assert series["publish"] == [1.0, 1.1, 0.9, None, None]  # gaps where it did not run
    # A run without any stage total (a row with stage None) keeps its place on the axis.
    empty = {"run_id": "r5", "run_start": T0, "stage": None, "seconds": None, "offset_s": None}
    runs, _, series = performance.stage_series([*PERF["stage_trends"], empty])
    assert runs[-1] == "r5" and series["ingest"][-1] is None


def test_the_stage_chart_plots_every_run_of_every_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    figures: list[Any] = []
    monkeypatch.setattr(performance, "png_base64", lambda fig: figures.append(fig) or "png")
    assert performance.stage_trends_png(PERF["stage_trends"], RUN_ID) == "png"
    [fig] = figures
    panels = {ax.get_title(loc="left"): ax for ax in fig.axes if ax.get_visible()}
    assert list(panels) == ["ingest", "train", "publish"]
    line = panels["train"].get_lines()[0]
    assert list(line.get_xdata()) == [1, 2, 3, 4, 5]
    assert list(line.get_ydata()) == [68.0, 75.0, 90.0, 2.0, 72.0]
    # This run's point is marked in its panel (none in publish: it has no total there yet).
    assert [list(c.get_offsets()[0]) for c in panels["train"].collections] == [[5.0, 72.0]]
    assert not panels["publish"].collections
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_with_one_run_the_stage_chart_gives_way_to_a_note() -> None:
    one_run = [r for r in PERF["stage_trends"] if r["run_id"] == RUN_ID]
    assert performance.stage_trends_png(one_run, RUN_ID) == ""
    for data in ({**PERF, "stage_trends": one_run}, {**PERF, "stage_trends": []}):
        html, page = render(perf=data)
        assert "h3:Each stage's seconds, run by run" in page.landmarks
        assert not [m for m in page.landmarks if m.startswith("img:seconds of each stage")]
        assert "No per-stage trend yet: it needs the stage timings of at least two runs" in html
        # The other charts stay.
        assert "img:trends across runs" in page.landmarks
    # Data fetched before this chart existed (no "stage_trends") renders the same way.
    old = {k: v for k, v in PERF.items() if k != "stage_trends"}
    assert "No per-stage trend yet" in performance.render_section(old)


AB_ROWS = [
    {
        "experiment": "exp <blink>1</blink>",
        "run_id": "ab-run",
        "arm": arm,
        "is_control": arm == "control",
        "users": 4000,
        "impressions": 40000,
        "clicks": clicks,
        "ctr": clicks / 40000,
        "ctr_low": clicks / 40000 - 0.002,
        "ctr_high": clicks / 40000 + 0.002,
        **dict.fromkeys(
            ("abs_lift", "abs_lift_low", "abs_lift_high", "rel_lift", "rel_lift_low"),
            None if arm == "control" else 0.0075,
        ),
        "rel_lift_high": None if arm == "control" else 0.2,
        "p_value": None if arm == "control" else 0.0001,
        "significant": None if arm == "control" else True,
        "mde_abs": None,
        "mde_rel": None if arm == "control" else 0.05,
        "impact": None
        if arm == "control"
        else {
            "inputs": {"active_customers": 1000},
            "relative_ctr_lift": 0.15,
            "extra_retained_customers": 12.0,
            "extra_annual_revenue": 600.0,
        },
        "rejected": {},
    }
    for arm, clicks in (("control", 2000), ("treatment", 2300))
]


def test_the_latest_ab_experiment_comes_after_the_data_escaped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reco.experiments import page as ab_page

    monkeypatch.setattr(ab_page, "lift_chart_png", lambda rows: "CHART")
    html, page = render(ab=ab_page.section_context(AB_ROWS))
    marks = page.landmarks
    assert marks.index("h2:Data") < marks.index("section#ab-test") < marks.index("h2:Dig deeper")
    assert "h2:A/B test: exp <blink>1</blink>" in marks and "blink" not in page.start_tags
    assert "exp &lt;blink&gt;1&lt;/blink&gt;" in html
    assert "img:A/B CTR intervals" in marks and "h3:Business impact of treatment" in marks
    arms = page.table("ab")
    assert [r[0] for r in arms] == ["arm", "control (control)", "treatment"]
    assert page.table("ab-inputs") == [["input", "value"], ["active_customers", "1,000"]]


def test_without_an_experiment_there_is_no_ab_section(published: tuple[str, Page]) -> None:
    html, page = published
    assert "section#ab-test" not in page.landmarks and "A/B test" not in html
