"""One Airflow stack for the tests in this folder, which drive Airflow as its operators do
(in a browser, and over the REST API): api-server, scheduler, dag-processor and triggerer
on loopback, with the commands of docker-compose.yml; started once, stopped after the
folder's last test."""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from reco import config
from reco.cli import environment
from reco.data.synthetic import SyntheticSpec, write_dataset
from tests.support.airflow_stack import (
    CONF,
    N_USERS,
    TOP_N,
    Api,
    Stack,
    admin_password,
    new_run,
    published,
    shot,
    trigger_from_form,
    watch_run_in_grid,
)
from tests.support.alert_receivers import alert_receivers
from tests.support.servers import background, free_port, stop_airflow, wait_for


@pytest.fixture(scope="package")
def airflow_stack(tmp_path_factory, vendored_data_docs_assets) -> Iterator[Stack]:
    """api-server, scheduler, dag-processor and triggerer; yields once the api-server is
    healthy. The ratings inbox is a fresh folder, polled every 2 s."""
    environment.init_airflow()
    logs = tmp_path_factory.mktemp("airflow-logs")
    inbox = tmp_path_factory.mktemp("ratings-inbox")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **environment.project_env(),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
        "AIRFLOW__API__BASE_URL": base,
        # Must be the same in every component; generated per test run, never stored.
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        # The DAG files do not change during the tests: parse them once, not every 30 s.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
        # What an operator sets for cheaper scheduled runs: the form's default folds.
        "RECO_CV_FOLDS": "0",
        "RECO_RATINGS_INBOX": str(inbox),
        "RECO_RATINGS_INBOX_POLL_SECONDS": "2",
    }
    # The alert channels point at receivers on loopback; a run late by 15 s is "late",
    # so the Deadline Alert fires during every run of this stack.
    receivers = alert_receivers()
    alerts, alert_env = receivers.__enter__()
    env.update({**alert_env, "RECO_RUN_DEADLINE_MINUTES": "0.25"})
    airflow = str(Path(sys.executable).parent / "airflow")
    names = ("api", "scheduler", "dags", "triggerer")
    api_log, sched_log, proc_log, trig_log = (logs / f"{n}.log" for n in names)
    all_logs = [api_log, sched_log, proc_log, trig_log]
    sessions: list[int] = []
    try:
        with (
            background(
                [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port)], api_log, env
            ) as api_proc,
            background([airflow, "scheduler"], sched_log, env) as sched_proc,
            background([airflow, "dag-processor"], proc_log, env) as dags_proc,
            background([airflow, "triggerer"], trig_log, env) as trig_proc,
        ):
            sessions += [p.pid for p in (api_proc, sched_proc, dags_proc, trig_proc)]
            wait_for(
                lambda: httpx.get(f"{base}/api/v2/monitor/health", timeout=5).status_code == 200,
                180,
                "the api-server",
                all_logs,
            )
            yield Stack(base, inbox, all_logs, alerts)
    finally:
        # Nothing of the stack may outlive it: a scheduler left on this metadata database
        # would run the tasks of later in-process dag.test runs.
        left = stop_airflow(config.AIRFLOW_HOME, sessions)
        receivers.__exit__(None, None, None)
        print(f"stopped the Airflow stack: {len(left)} processes")


@pytest.fixture(scope="package")
def api(airflow_stack: Stack) -> Api:
    """Logged in through /auth/token as the generated admin user, once the DAGs are parsed."""
    base = airflow_stack.base
    password = admin_password()
    wrong = httpx.post(
        f"{base}/auth/token", json={"username": "admin", "password": "admin"}, timeout=30
    )
    assert wrong.status_code == 401
    resp = httpx.post(
        f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=30
    )
    assert resp.status_code == 201, resp.text
    client = Api(base, resp.json()["access_token"])
    for dag_id in ("recommendations", "pipeline_report", "ab_test_analysis", "rollback"):
        wait_for(
            lambda dag_id=dag_id: client.call("GET", f"/dags/{dag_id}").status_code == 200,
            180,
            f"the dag-processor to parse {dag_id}",
            airflow_stack.logs,
        )
    return client


@pytest.fixture(scope="package")
def dataset(tmp_path_factory) -> Path:
    """A folder with ratings.csv (and its manifest) of N_USERS users."""
    d = tmp_path_factory.mktemp("stack-data")
    write_dataset(d, SyntheticSpec(n_users=N_USERS, n_items=180, mean_ratings_per_user=25, seed=3))
    return d


# --- the browser -------------------------------------------------------------------------
@pytest.fixture(scope="package")
def browser(airflow_stack: Stack) -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Chromium is missing: `make setup` installs it (apt-get install chromium)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="package")
def page(browser, airflow_stack: Stack, api: Api) -> Iterator[Any]:
    """One tab, logged in through the login form; requests leaving 127.0.0.1 fail, as on
    a machine without internet."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    offsite: list[str] = []

    def offline(route: Any) -> None:
        if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            offsite.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", offline)
    # The browser's own online/offline events, recorded (not changed) for failure messages:
    # the UI's requests wait while the browser believes it is offline.
    context.add_init_script(
        "window.__recoNetworkEvents = [];"
        "for (const kind of ['online', 'offline']) addEventListener(kind, () =>"
        " window.__recoNetworkEvents.push([kind, new Date().toISOString()]));"
    )
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    tab.base = airflow_stack.base
    tab.offsite = offsite
    tab.goto(f"{tab.base}/")
    tab.fill("input[name=username]", "admin")
    tab.fill("input[name=password]", admin_password())
    shot(tab, "01-login")
    tab.keyboard.press("Enter")
    tab.wait_for_url(re.compile(r".*/(dags)?$"))
    yield tab
    context.close()


@pytest.fixture(autouse=True)
def blank_tab_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """The shared tab leaves the UI after a test that used it: a page of the UI polls the
    API every few seconds, and the tab would go on costing the browser's and the api-server's
    CPU through the tests that follow (each test opens the page it needs)."""
    yield
    if "page" in request.fixturenames:
        with contextlib.suppress(Exception):
            request.getfixturevalue("page").goto("about:blank")


@pytest.fixture(scope="package")
def form_run(page, api: Api, dataset: Path, warehouse_url: str) -> tuple[str, dict]:
    """`recommendations` triggered from the form on ``dataset`` with the small model of
    CONF, watched to success in the grid: (run id, the published tables)."""
    before = {r["dag_run_id"] for r in api.runs()}
    # max_row_drop 1: this batch may be smaller than an earlier run's.
    fields = {"dataset": str(dataset), "max_row_drop": "1", **{k: str(v) for k, v in CONF.items()}}
    trigger_from_form(page, fields, "05-trigger-form-dataset")
    run = new_run(api, before)
    assert run["conf"]["dataset"] == str(dataset) and run["conf"]["top_n"] == TOP_N
    watch_run_in_grid(page, api, run["dag_run_id"], "07-run-dataset-success")
    return run["dag_run_id"], published(warehouse_url)
