"""The summary ``reco run`` prints when a run ends: on success what was ingested and
published, the model's figures beside the baselines, and where the report, the log and a
first query are; on failure the step, the one-line cause, the log's last errors and where
the traceback is."""

from __future__ import annotations

import json
from pathlib import Path

from reco import config
from reco.console import run_log as logs
from reco.runs import RunFolder


def print_data_quality(run_dir: Path | None) -> None:
    """Where a run's quarantined lines and Data Docs are, when it got that far."""
    if run_dir is None:
        return
    manifest_path = RunFolder(run_dir).manifest
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        for note in manifest.get("notes") or []:  # optional inputs left out, said once
            print(f"  note             : {note}")
        if manifest.get("n_rejected"):
            print(
                f"  quarantined      : {manifest['n_rejected']:,} lines "
                f"{manifest['rejected_by_reason']} in {manifest['quarantine_path']}"
            )
    validation = RunFolder(run_dir).validation
    if validation.exists():
        print(f"  data docs        : {json.loads(validation.read_text())['data_docs']}")


def run_log(run_dir: Path | None, log: Path | None = None) -> Path | None:
    """The run's log file (``reco run`` without ``--verbose``), when there is one."""
    for path in (RunFolder(run_dir).log if run_dir else None, log):
        if path is not None and path.exists():
            return path
    return None


def print_log_errors(log: Path, stage: str | None, known: str | None) -> bool:
    """The failed step's last error lines in the log, beyond what ``known`` says; whether
    there were any."""
    text = logs.read_log(log)
    task = stage if stage and logs.task_section(text, stage) else logs.failed_task(text)
    lines = logs.error_lines(text, task, known=[known] if known else [])
    if lines:
        print(f"  last errors of {task or 'the run'} in the log:")
        for line in lines:
            print(f"    {line}")
    return bool(lines)


def summarize(run_id: str, state: str, log: Path | None = None) -> int:
    """The run's outcome for a person; ``log``: where the run's log started, in case the
    run never got a folder to move it to. The exit code: 0 on success, else 1."""
    from reco.runs import run_dir_for

    run_dir = run_dir_for(run_id) if run_id else None
    log = run_log(run_dir, log)
    print("\n" + "=" * 72)
    if state != "success":
        print_failure(run_id, state, run_dir, log)
    else:
        print_success(run_id, run_dir, log)
    print("=" * 72)
    return 0 if state == "success" else 1


def print_failure(run_id: str, state: str, run_dir: Path | None, log: Path | None) -> None:
    from reco.runtime import read_error

    print(
        f"recommendations run {run_id or '?'} FAILED (state: {state}); nothing new was "
        "published, the previous recommendations are unchanged."
    )
    info = read_error(run_dir)
    if info:
        print(f"  failed at {info['stage']}: {info['message']}")
        if info.get("traceback"):
            where = "and in the log" if log else "and the task log above"
            print(f"  traceback        : {RunFolder(run_dir).error} ({where})")
    elif not log:
        print("  see the task logs above for the cause")
    if log:
        quoted = print_log_errors(log, info and info["stage"], info and info["message"])
        if not info and not quoted:
            print("  see the log below for the cause")
    print_data_quality(run_dir)
    if log:
        print(f"  log              : {log}")


def published_rows(model_version: str) -> tuple[int, int]:
    """Rows and users of ``model_version`` in the warehouse's reco.recommendations."""
    from reco.publishing import warehouse

    with warehouse.connection(warehouse.resolve_url()) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*), count(DISTINCT user_id) FROM reco.recommendations "
            "WHERE model_version = %s",
            (model_version,),
        )
        rows, users = cur.fetchone()
    return rows, users


def print_success(run_id: str, run_dir: Path, log: Path | None) -> None:
    from reco.runtime import run_identity

    manifest = json.loads((RunFolder(run_dir).manifest).read_text())
    metrics = json.loads((RunFolder(run_dir).metrics).read_text())
    model_version, _ = run_identity(run_dir)
    rows, users = published_rows(model_version)
    base = metrics["baselines"]
    k = metrics["ranking"]["k"]
    decision = metrics.get("gate") or {"publish": True, "reason": ""}
    print(f"recommendations run {run_id}: success")
    print(
        f"  ratings ingested : {manifest['n_ratings']:,} ({manifest['n_rejected']:,} rejected)"
        f" from {manifest['source']['ratings_path']}"
    )
    if decision["publish"]:
        print(f"  published        : {rows:,} rows for {users:,} users, model {model_version}")
    else:
        print(
            f"  NOT published    : model rejected by the gate: {decision['reason']}; the "
            "previous recommendations stay live"
        )
    print(
        f"  rating RMSE      : {metrics['rmse']:.4f} held-out (MAE {metrics['mae']:.4f}); "
        f"baselines: global mean {base['global_mean']['rmse']:.4f}, "
        f"user+item bias {base['bias']['rmse']:.4f}"
    )
    print(
        f"  ranking nDCG@{k}  : {metrics['ndcg_at_k']:.4f} (precision@{k} "
        f"{metrics['precision_at_k']:.4f}); most-popular nDCG@{k} "
        f"{base['most_popular']['ndcg']:.4f}"
    )
    print(f"  model            : {metrics['ranking'].get('why', '')}")
    print_data_quality(run_dir)
    print(f"  report           : {config.REPORTS_DIR / (run_dir.name + '.html')}")
    if log:
        print(f"  log              : {log}")
    print(
        '  query            : psql "$(.venv/bin/reco warehouse-url)" -c "SELECT rank, title, '
        'source, because_title FROM reco.recommend(1, 10)"'
    )
