"""Alerts that reach a person: an e-mail through the SMTP provider's notifier and a JSON
POST through the HTTP provider's, each configured by an Airflow connection:

- ``reco_alerts_email`` (type smtp): host, port, login, password as the SMTP provider reads
  them; extras ``to`` (addresses, comma-separated) and ``from_email``;
- ``reco_alerts_webhook`` (type http): the URL to POST to (host, port, schema, endpoint in
  the ``endpoint`` extra), and optional ``headers``.

With neither connection an alert is only written to the task log. A channel that fails
is logged and never fails the run. What is sent (:class:`Alert`): a title, the fields of
the event, and links to the Airflow UI (the log, the run) and to the run's report.

Kinds: ``task_failed`` (a step failed: run, step, the one-line cause), ``data_quality``
(the gate refused the batch: which checks, the Data Docs), ``model_rejected`` (why, and how
many runs in a row), ``stale`` (the published version is older than
``RECO_ALERT_STALE_HOURS``), ``deadline`` (a run not finished by ``RECO_RUN_DEADLINE``).
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from reco import config
from reco.runs import RunFolder, run_key

log = logging.getLogger(__name__)

KINDS = ("task_failed", "data_quality", "model_rejected", "stale", "deadline")


@dataclass(frozen=True)
class Alert:
    kind: str
    title: str
    fields: dict[str, Any] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown alert kind {self.kind!r}: one of {KINDS}")

    @property
    def subject(self) -> str:
        return f"[reco] {self.title}"

    def text(self) -> str:
        lines = [self.title, ""]
        lines += [f"{k}: {v}" for k, v in self.fields.items()]
        lines += [f"{k}: {v}" for k, v in self.links.items()]
        return "\n".join(lines)

    def html(self) -> str:
        rows = "".join(
            f"<tr><th align='left'>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in self.fields.items()
        )
        links = "".join(
            f"<li><a href='{html.escape(u)}'>{html.escape(k)}</a></li>"
            for k, u in self.links.items()
        )
        return f"<h3>{html.escape(self.title)}</h3><table>{rows}</table><ul>{links}</ul>"

    def payload(self) -> dict[str, Any]:
        return {
            "source": "reco",
            "kind": self.kind,
            "title": self.title,
            "fields": self.fields,
            "links": self.links,
            "sent_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }


def ui_base() -> str:
    """The Airflow UI's address, as the api-server is told it (``[api] base_url``)."""
    from airflow.configuration import conf

    return (conf.get("api", "base_url", fallback="") or "http://localhost:8080").rstrip("/")


def run_links(dag_id: str, run_id: str, task_id: str | None = None) -> dict[str, str]:
    """The UI's pages of a run (and one task's log), and the run's report."""
    base = ui_base()
    run = f"{base}/dags/{dag_id}/runs/{quote(run_id, safe='')}"
    links = {"run": run}
    if task_id:
        links["log"] = f"{run}/tasks/{task_id}"
    if dag_id == "recommendations":
        links["report"] = f"{base}/reco-reports/{run_key(run_id)}.html"
    return links


def connection(conn_id: str) -> Any | None:
    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except Exception:  # not defined: that channel is off
        return None


def send(alert: Alert) -> list[str]:
    """Send ``alert`` on every configured channel; the channels that took it."""
    sent: list[str] = []
    email = connection(config.ALERT_EMAIL_CONN_ID)
    if email is not None:
        try:
            send_email(alert, email)
            sent.append("email")
        except Exception as exc:  # an alert must never fail the run
            log.warning("alert %s: e-mail not sent: %s", alert.kind, exc)
    hook = connection(config.ALERT_WEBHOOK_CONN_ID)
    if hook is not None:
        try:
            send_webhook(alert, hook)
            sent.append("webhook")
        except Exception as exc:
            log.warning("alert %s: webhook not sent: %s", alert.kind, exc)
    where = ", ".join(sent) if sent else "no alert channel configured"
    print(f"[alert] {alert.kind}: {alert.title} ({where})", flush=True)
    return sent


def send_email(alert: Alert, conn: Any) -> None:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    extra = conn.extra_dejson
    to = [a.strip() for a in str(extra.get("to", "")).split(",") if a.strip()]
    if not to:
        raise ValueError(f"the {config.ALERT_EMAIL_CONN_ID} connection has no 'to' extra")
    SmtpNotifier(
        to=to,
        from_email=extra.get("from_email") or f"reco@{conn.host or 'localhost'}",
        subject=alert.subject,
        html_content=alert.html(),
        smtp_conn_id=config.ALERT_EMAIL_CONN_ID,
    ).notify({})


def send_webhook(alert: Alert, conn: Any) -> None:
    from airflow.providers.http.notifications.http import HttpNotifier

    extra = conn.extra_dejson
    headers = {"Content-Type": "application/json", **(extra.get("headers") or {})}
    HttpNotifier(
        http_conn_id=config.ALERT_WEBHOOK_CONN_ID,
        endpoint=extra.get("endpoint", ""),
        method="POST",
        json=alert.payload(),
        headers=headers,
    ).notify({})


# --- the alerts ----------------------------------------------------------------------------
def cause_of(context: dict[str, Any], run_dir: Any | None) -> str:
    """The one-line cause: the step's own message (error.json), else the exception's."""
    from reco.runtime import read_error

    error = read_error(run_dir) if run_dir is not None else None
    if error and error.get("message"):
        return str(error["message"]).strip().splitlines()[0]
    exc = context.get("exception")
    text = str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else ""
    return text or (type(exc).__name__ if exc is not None else "unknown")


def task_failed(context: dict[str, Any]) -> None:
    """``on_failure_callback`` of every task: a failed step, or the data-quality gate's
    refusal when the step is ``validate`` and the run has validation results."""
    ti = context["ti"]
    dag_id, run_id, task_id = ti.dag_id, ti.run_id, ti.task_id
    run_dir = RunFolder.of(run_id).path if dag_id == "recommendations" else None
    fields = {"dag": dag_id, "run": run_id, "step": task_id, "try": ti.try_number}
    links = run_links(dag_id, run_id, task_id)
    cause = cause_of(context, run_dir)
    refused = data_quality_refusal(run_dir) if task_id == "validate" and run_dir else None
    if refused is not None:
        links["data docs"] = f"{ui_base()}/reco-reports/data_docs/{run_key(run_id)}/index.html"
        alert = Alert(
            "data_quality",
            f"data-quality gate refused the batch of {run_id}",
            {**fields, "cause": cause, "failed checks": "; ".join(refused)},
            links,
        )
    else:
        alert = Alert(
            "task_failed",
            f"{dag_id}: {task_id} failed in {run_id}",
            {**fields, "cause": cause},
            links,
        )
    send(alert)


def data_quality_refusal(run_dir: Any) -> list[str] | None:
    """The failed checks of a refused batch (``validation.json``), or None."""
    path = RunFolder(run_dir).validation
    if not path.exists():
        return None
    report = json.loads(path.read_text())
    if report.get("success", True):
        return None
    return [str(check) for check in report.get("failed") or []]


def model_rejected(run_id: str, reason: str, in_a_row: int, model_version: str | None) -> None:
    send(
        Alert(
            "model_rejected",
            f"model of {run_id} rejected ({in_a_row} run{'s' if in_a_row != 1 else ''} in a row)",
            {
                "run": run_id,
                "model version": model_version,
                "reason": reason,
                "rejected in a row": in_a_row,
                "published": "unchanged: the previous model's lists stay live",
            },
            run_links("recommendations", run_id, "publish"),
        )
    )


def stale(run_id: str, published: str, published_at: datetime, hours: float) -> None:
    age = (datetime.now(UTC) - published_at).total_seconds() / 3600
    send(
        Alert(
            "stale",
            f"recommendations are {age:.0f} h old (limit {hours:g} h)",
            {
                "published version": published,
                "published at": published_at.isoformat(timespec="seconds"),
                "age hours": round(age, 1),
                "limit hours": hours,
                "seen by run": run_id,
            },
            run_links("recommendations", run_id),
        )
    )


async def deadline_missed(context: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """The DAG's DeadlineAlert callback (run in the triggerer): the run is still not done."""
    import asyncio

    dag_run = (context or {}).get("dag_run") or {}
    get = dag_run.get if isinstance(dag_run, dict) else lambda k, d=None: getattr(dag_run, k, d)
    dag_id = get("dag_id") or kwargs.get("dag_id", "recommendations")
    run_id = get("dag_run_id") or get("run_id") or "?"
    alert = Alert(
        "deadline",
        f"{dag_id} run {run_id} not finished within {kwargs.get('deadline', '?')}",
        {"dag": dag_id, "run": run_id, "deadline": kwargs.get("deadline"), "state": get("state")},
        run_links(dag_id, run_id) if run_id != "?" else {},
    )
    await asyncio.to_thread(send, alert)


def deadline_alert() -> Any:
    """The ``recommendations`` DAG's Deadline Alert: a run not finished ``RUN_DEADLINE``
    after it was queued calls :func:`deadline_missed` (in the triggerer)."""
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=config.RUN_DEADLINE,
        callback=AsyncCallback(deadline_missed, kwargs={"deadline": str(config.RUN_DEADLINE)}),
    )


def rejected_in_a_row(url: str) -> int:
    from reco.publishing import publish, warehouse

    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(
            warehouse.named_statements("model_runs.sql")["rejected_in_a_row"],
            {"published": publish.PUBLISHED, "rejected": publish.REJECTED},
        )
        return int(cur.fetchone()[0])


def check_freshness(url: str, run_id: str, hours: float = config.ALERT_STALE_HOURS) -> bool:
    """Alert when the published version is older than ``hours`` (0: never); whether it did."""
    from reco.publishing import publish, warehouse

    if hours <= 0:
        return False
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(
            warehouse.named_statements("model_runs.sql")["published_at"],
            {"published": publish.PUBLISHED},
        )
        row = cur.fetchone()
    if row is None or row[1] is None:
        return False
    version, published_at = row
    if (datetime.now(UTC) - published_at).total_seconds() <= hours * 3600:
        return False
    stale(run_id, version, published_at, hours)
    return True
