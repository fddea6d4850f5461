"""The Airflow UI as an operator uses it, in a real browser (Debian's Chromium driven by
Playwright): log in, open `recommendations`, trigger it from the form with its defaults
(prepare picks the built-in data) and then with a dataset path, watch that run succeed in
the grid and start `pipeline_report` through its Asset, open the report from the
**Reports** menu, follow its Data Docs link with the network off, roll back to that run's
model from the `rollback` DAG's form, see the Asset lineage, and drop a file in the
watched inbox to start a run without a click.

Each step saves a screenshot under ``var/test[/gwN]/screenshots/airflow-ui/`` (what the user saw
when a step fails)."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

from playwright.sync_api import expect

from reco import config
from reco.publishing import publish, warehouse
from reco.runs import RunFolder
from tests.support.airflow_stack import (
    Api,
    new_run,
    published,
    shot,
    stop_after_prepare,
    trigger_from_form,
    wait_for_text,
    watch_run_in_grid,
)
from tests.support.published import write_run

# The Data Docs route of the reports app, not the Airflow page that frames it.
DATA_DOCS_INDEX = re.compile(r"/reco-reports/data_docs/[^/]+/index\.html")


def run_info(run_id: str) -> dict:
    return json.loads(RunFolder.of(run_id).run_info.read_text())


def test_the_dag_page_shows_its_schedule_and_next_run(page) -> None:
    page.goto(f"{page.base}/dags/recommendations")
    wait_for_text(page, r"Next Run")
    # The Asset half of the schedule: the page asks for it separately, and it can come a
    # few seconds after the rest on a busy machine.
    wait_for_text(page, r"ratings_inbox")
    shot(page, "02-dag")
    text = page.inner_text("body")
    assert re.search(r"Next Run\s*\n\s*\d{4}-\d{2}-\d{2} 00:00:00", text), text[:2000]


def test_trigger_from_the_form_with_defaults(page, api: Api) -> None:
    before = {r["dag_run_id"] for r in api.runs()}
    trigger_from_form(page, {}, "03-trigger-form-defaults")
    run = new_run(api, before)
    assert {k: v for k, v in run["conf"].items() if v not in (None, "")} == {
        "format": "auto",
        "rating_scale": "auto",
        "top_n": config.DEFAULT_TOP_N,
        "similar_k": config.DEFAULT_SIMILAR_K,
        "folds": 0,  # RECO_CV_FOLDS of this stack
        "families": ",".join(config.DEFAULT_FAMILIES),
        "rating_cv": False,
        "min_rows": config.DEFAULT_MIN_ROWS,
        "max_quarantine_share": config.DEFAULT_MAX_QUARANTINE_SHARE,
        "max_row_drop": config.DEFAULT_MAX_ROW_DROP,
        "gate_tolerance": config.DEFAULT_GATE_TOLERANCE,
    }
    before.add(run["dag_run_id"])
    # A bad value is refused by the form, with the parameter named, before any run starts.
    trigger_from_form(page, {"ranking_grid": "rank=64"}, "04-trigger-form-bad-value")
    wait_for_text(page, r"Invalid input for param ranking_grid")
    shot(page, "04-trigger-form-bad-value")
    page.keyboard.press("Escape")
    assert {r["dag_run_id"] for r in api.runs()} == before

    # With the defaults the run reads the built-in synthetic data; the steps after prepare
    # are those of the dataset run below, watched to success.
    assert stop_after_prepare(api, run["dag_run_id"])["dataset"] == str(config.SYNTHETIC_DIR)


def test_trigger_from_the_form_with_a_dataset(api: Api, form_run, dataset) -> None:
    run_id, tables = form_run
    assert run_info(run_id)["dataset"] == str(dataset)
    assert tables["reco.recommendations"]
    # Its publish updated reco.recommendations, which started the report's rebuild (the
    # first publish of this stack: the defaults run stopped after prepare).
    deadline = time.monotonic() + 180
    reports: list[dict] = []
    while time.monotonic() < deadline:
        reports = [r for r in api.runs("pipeline_report") if r["run_type"] == "asset_triggered"]
        if reports and reports[-1]["state"] in ("success", "failed"):
            break
        time.sleep(3)
    assert reports and reports[-1]["state"] == "success", reports


def test_the_report_opens_from_the_reports_menu_and_links_styled_data_docs(page, form_run) -> None:
    page.goto(f"{page.base}/")
    page.get_by_role("button", name="Plugins").click()
    page.get_by_text("Reports", exact=True).click()
    page.get_by_text("Latest run report").click()
    report = page.frame_locator("iframe").first
    report.get_by_text("Where the time went").first.wait_for()
    shot(page, "08-report")
    text = report.locator("body").inner_text()
    assert form_run[0] in text
    assert re.search(r"Published|Rejected", text) and "nDCG" in text and "RMSE" in text
    # The report's Data Docs link opens in the report's own frame (target="_self"), inside
    # the Airflow shell, with the network off. The navigation is awaited as a response to
    # the Data Docs route: a link to a missing folder fails here with its status.
    link = report.get_by_role("link", name=re.compile("Data Docs", re.I)).first
    assert link.get_attribute("target") == "_self"
    with page.expect_response(lambda r: DATA_DOCS_INDEX.match(urlparse(r.url).path)) as answer:
        link.click()
    response = answer.value
    assert response.ok, f"the Data Docs link answered {response.status}: {response.url}"
    # The frame that loaded it is the report's iframe, one level below Airflow's page
    # (whose own address Airflow rewrites to /plugin/<route>/reco-reports/data_docs/...).
    frame = response.frame
    assert frame.parent_frame == page.main_frame, "the Data Docs left the Airflow shell"
    assert urlparse(page.url).path.startswith("/plugin/reco-latest-report/reco-reports/")
    frame.wait_for_selector(".navbar", state="attached")
    # bootstrap-table fills the index from its data: wait for its rows, not for a time.
    frame.wait_for_function("() => document.querySelectorAll('table tbody tr').length >= 2")
    shot(page, "09-data-docs-offline")
    navbar_display = frame.evaluate(
        "() => getComputedStyle(document.querySelector('.navbar')).getPropertyValue('display')"
    )
    assert navbar_display == "flex", "Bootstrap's CSS did not load: the navbar is not a flex box"
    assert frame.evaluate("() => typeof window.jQuery") == "function"
    assert not [u for u in page.offsite if "data_docs" in u]  # nothing it needs is remote


def test_all_run_reports_lists_runs_newest_first_with_how_each_ended(page, form_run) -> None:
    """Plugins -> Reports -> All run reports, as an analyst opens it: a line per run,
    newest first, with its dataset, outcome, model, nDCG, RMSE and wall time; and a
    report's wall time compared only with runs on the same dataset and CV setting."""
    page.goto(f"{page.base}/")
    page.get_by_role("button", name="Plugins").click()
    page.get_by_text("Reports", exact=True).click()
    page.get_by_text("All run reports").click()
    index = page.frame_locator("iframe").first
    rows = index.locator("table.runs tbody tr")
    rows.first.wait_for()
    shot(page, "08b-all-run-reports")
    header = index.locator("table.runs thead th").all_inner_texts()
    assert header == ["started", "dataset", "outcome", "model", "nDCG@k", "RMSE", "wall time"]
    lines = [row.locator("td").all_inner_texts() for row in rows.all()]
    started = [line[0] for line in lines]
    assert started == sorted(started, reverse=True), started
    run_id, _ = form_run
    dataset = Path(run_info(run_id)["dataset"]).name
    mine = [line for line in lines if line[1] == dataset and line[2] == "published"]
    assert mine, lines
    assert re.fullmatch(r"0\.\d{4} @\d+", mine[0][4]) and re.fullmatch(r"\d\.\d{4}", mine[0][5])
    assert re.fullmatch(r"\d+ s", mine[0][6]) and mine[0][3], mine[0]
    # Its report, from its line: the headline compares like with like, and says so.
    index.get_by_role("link", name=mine[0][0]).first.click()
    report = page.frame_locator("iframe").first
    wall = report.locator("dd.wall")
    wall.wait_for()
    assert "same dataset with the same CV setting" in wall.inner_text()


def test_a_rollback_triggered_from_its_form_restores_the_earlier_lists(
    page, api: Api, form_run, warehouse_url: str
) -> None:
    """A model published after the form's run turns out bad: the operator triggers the
    `rollback` DAG with the form run's version, and its lists come back exactly."""
    _, tables = form_run
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT DISTINCT model_version FROM reco.recommendations")
        [(good,)] = cur.fetchall()
    bad = write_run(config.RUNS_DIR / "ui-rollback-bad", 1)
    try:
        publish.run(warehouse_url, bad.path, "ui-rollback-bad")
        assert published(warehouse_url) != tables
        before = {r["dag_run_id"] for r in api.runs("rollback")}
        trigger_from_form(page, {"model_version": good}, "12-rollback-form", dag_id="rollback")
        run = new_run(api, before, dag_id="rollback")
        assert run["conf"]["model_version"] == good
        watch_run_in_grid(page, api, run["dag_run_id"], "13-rollback-success", "rollback")
        assert published(warehouse_url) == tables  # every row, score and generated_at
        with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
            cur.execute(warehouse.named_statements("model_runs.sql")["champion"])
            assert cur.fetchone()[0] == good
    finally:
        shutil.rmtree(bad.path, ignore_errors=True)


def test_the_assets_view_links_ratings_to_recommendations_to_the_report(page) -> None:
    page.goto(f"{page.base}/assets")
    page.get_by_text("reco.recommendations").first.click()
    # The lineage graph: the Asset's producer and consumer, and the report's own Asset, as
    # nodes of the graph (not anywhere on the page), each waited for on its own.
    graph = page.locator(".react-flow")
    chain = (
        "ratings_inbox",
        "recommendations",
        "reco.recommendations",
        "pipeline_report",
        "reco.run_report",
    )
    nodes = [graph.get_by_text(name, exact=True).first for name in chain]
    for node in nodes:
        expect(node).to_be_visible()
    shot(page, "10-assets-lineage")
    # Drawn left to right in the order the data flows: inbox -> DAG -> table -> report.
    lefts = [node.bounding_box()["x"] for node in nodes]
    assert lefts == sorted(lefts) and len(set(lefts)) == len(lefts), dict(
        zip(chain, lefts, strict=True)
    )


def test_a_file_dropped_in_the_inbox_starts_a_run_without_a_click(
    page, api, airflow_stack, dataset, form_run
) -> None:
    before = {r["dag_run_id"] for r in api.runs()}
    # Written elsewhere, then moved in: the watcher sees a complete file.
    staged = airflow_stack.inbox.parent / "staged-ratings.csv"
    shutil.copy(dataset / "ratings.csv", staged)
    landed = airflow_stack.inbox / "ratings-export.csv"
    staged.rename(landed)
    run = new_run(api, before, timeout=120, run_type="asset_triggered")
    page.goto(f"{page.base}/dags/recommendations/runs/{run['dag_run_id']}")
    wait_for_text(page, r"Asset Triggered|asset_triggered|Asset", 60)
    shot(page, "11-run-from-dropped-file")
    info = stop_after_prepare(api, run["dag_run_id"], timeout=120)
    # prepare chose the file that landed; the rest of the run is the pipeline tested above.
    assert info["dataset"] == str(landed)
