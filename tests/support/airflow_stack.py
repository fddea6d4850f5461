"""Clients for an Airflow stack started by the end-to-end tests (see tests/e2e/conftest.py)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from reco import config
from reco.publishing import warehouse
from reco.runs import RunFolder
from tests.support.alert_receivers import Inbox
from tests.support.servers import wait_for

N_USERS = 120
TOP_N = 4
# A small model, fixed parameters: the search is tested elsewhere.
GRIDS = {
    "grid": json.dumps({"rank": [8], "regParam": [0.3], "maxIter": [8]}),
    "ranking_grid": json.dumps({"rank": [16], "regParam": [3.0], "alpha": [10.0], "maxIter": [10]}),
}
CONF = {"top_n": TOP_N, "folds": 0, **GRIDS}
SHOTS = config.VAR_DIR / "screenshots" / "airflow-ui"
RUN_TIMEOUT = 900


@dataclass
class Stack:
    base: str
    inbox: Path  # the watched ratings inbox of this stack
    logs: list[Path]
    alerts: Inbox  # where the stack's alert channels deliver


class Api:
    """A logged-in REST API v2 client."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.auth = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, **kwargs) -> httpx.Response:
        return httpx.request(
            method, f"{self.base}/api/v2{path}", headers=self.auth, timeout=30, **kwargs
        )

    def trigger(self, conf: dict, dag_id: str = "recommendations") -> str:
        resp = self.call(
            "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf}
        )
        assert resp.status_code == 200, resp.text
        return resp.json()["dag_run_id"]

    def runs(self, dag_id: str = "recommendations") -> list[dict]:
        resp = self.call("GET", f"/dags/{dag_id}/dagRuns", params={"order_by": "run_after"})
        assert resp.status_code == 200, resp.text
        return resp.json()["dag_runs"]

    def wait(self, run_id: str, timeout: float = 900, dag_id: str = "recommendations") -> str:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
            if state in ("success", "failed"):
                return state
            time.sleep(3)
        raise AssertionError(f"run {run_id} still {state} after {timeout:.0f}s")


def admin_password() -> str:
    password_file = config.AIRFLOW_HOME / "simple_auth_manager_passwords.json.generated"
    wait_for(lambda: password_file.stat().st_size > 2, 60, "the generated password file")
    return json.loads(password_file.read_text())["admin"]


def published(url: str) -> dict[str, list[tuple]]:
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        out = {}
        for table, order in (
            ("reco.recommendations", "user_id, rank"),
            ("reco.similar_items", "item_id, rank"),
        ):
            cur.execute(f"SELECT * FROM {table} ORDER BY {order}")
            out[table] = cur.fetchall()
        return out


def shot(page: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_for_text(page: Any, pattern: str, timeout: float = 60) -> None:
    """Wait until the page's rendered text matches ``pattern`` (a regex): Playwright's
    own retrying assertion on the content, no fixed sleep."""
    from playwright.sync_api import expect

    try:
        expect(page.locator("body")).to_contain_text(
            re.compile(pattern), use_inner_text=True, timeout=timeout * 1000
        )
    except AssertionError:
        raise AssertionError(
            f"{pattern!r} not on {page.url}:\n{page.inner_text('body')[:3000]}"
        ) from None


def new_run(
    api: Api,
    before: set[str],
    timeout: float = 60,
    run_type: str | None = None,
    dag_id: str = "recommendations",
) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = [r for r in api.runs(dag_id) if r["dag_run_id"] not in before]
        if fresh and (run_type is None or fresh[-1]["run_type"] == run_type):
            return fresh[-1]
        time.sleep(1)
    raise AssertionError(f"no new {run_type or ''} run of {dag_id} in {timeout:.0f}s")


def stop_after_prepare(api: Api, run_id: str, timeout: float = 180) -> dict:
    """Wait until ``prepare`` has written the run's ``run.json`` (what it chose to read),
    then mark the run failed, as an operator would in the UI: the steps after prepare are
    the pipeline other tests run to the end. Returns ``run.json``."""
    path = RunFolder.of(run_id).run_info
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not path.exists():
        time.sleep(2)
    assert path.exists(), f"prepare of {run_id} wrote no run.json in {timeout:.0f} s"
    resp = api.call("PATCH", f"/dags/recommendations/dagRuns/{run_id}", json={"state": "failed"})
    assert resp.status_code == 200, resp.text
    return json.loads(path.read_text())


def trigger_from_form(
    page: Any, fields: dict[str, str], name: str, dag_id: str = "recommendations"
) -> None:
    """Open the DAG's page, click Trigger, fill ``fields``, submit."""
    page.goto(f"{page.base}/dags/{dag_id}")
    page.get_by_test_id("trigger-dag-button").click()
    for field, value in fields.items():
        # Text fields carry the param's name as their id; number fields are named by their
        # step buttons.
        step_button = page.locator(f'[id="number-input:element_{field}:inc"]')
        if step_button.count():
            page.fill(f'[id="{step_button.get_attribute("aria-controls")}"]', value)
        else:
            page.fill(f"#element_{field}", value)
    submit = page.get_by_test_id("trigger-dag-submit")
    submit.scroll_into_view_if_needed()
    shot(page, name)
    assert submit.is_enabled(), "the Trigger button is disabled with these values"
    # The click counts once the form's POST has been answered (200, or 400 for a value the
    # server refuses): a click that sends nothing fails here, with what the page knew.
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        with page.expect_response(lambda r: _is_trigger_post(r, dag_id), timeout=30_000):
            submit.click()
    except PlaywrightTimeout:
        path = shot(page, f"{name}-no-request")
        state = page.evaluate(
            "() => ({online: navigator.onLine, visibility: document.visibilityState,"
            " events: window.__recoNetworkEvents || []})"
        )
        raise AssertionError(
            f"the form's Trigger button sent no request in 30 s (page state {state}; "
            f"screenshot {path})"
        ) from None


def _is_trigger_post(response: Any, dag_id: str) -> bool:
    return response.request.method == "POST" and response.url.split("?")[0].endswith(
        f"/api/v2/dags/{dag_id}/dagRuns"
    )


def watch_run_in_grid(
    page: Any, api: Api, run_id: str, name: str, dag_id: str = "recommendations"
) -> None:
    """Open the run in the grid while it runs; once it ends, the UI must say it succeeded."""
    page.goto(f"{page.base}/dags/{dag_id}/runs/{run_id}")
    state = api.wait(run_id, RUN_TIMEOUT, dag_id)
    page.reload()
    wait_for_text(page, r"Logical Date")
    shot(page, name)
    assert state == "success", f"run {run_id} {state}:\n{page.inner_text('body')[:3000]}"
    # The run's own badge, beside its id in the header (not a task's).
    wait_for_text(page, re.escape(run_id) + r"\s*\n\s*Success\s*\n")
    shot(page, name)
