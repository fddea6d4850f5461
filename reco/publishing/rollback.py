"""Rollback: publish an earlier model's lists again, through the same swap as a publish.

The lists a run published stay in its run folder (``recommendations.parquet``,
``similar_items.parquet``, ``popular_items.parquet``) until retention prunes it, which
never happens to the last ``RECO_RETAIN_PUBLISHED`` published runs
(:mod:`reco.maintenance.retention`). A rollback reads those files and publishes them with
:func:`reco.publishing.publish.publish_table`: one transaction, every lock taken up front
in the readers' order, retried; readers see the current lists or the restored ones, never a
mix. It is recorded in ``reco.model_runs`` as a published attempt of its own run
(``rollback__<UTC time>``) carrying the restored version, its parameters and metrics, and
``restored_from`` naming the run it came from; the champion, the latest published row,
moves with it, so the next training compares against the restored model.

    reco rollback                   # back to the version published before the current one
    reco rollback --to als-2026...  # to a given version
    reco rollback --list            # the published versions and whether each can be restored
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reco.errors import PipelineError
from reco.publishing import publish, warehouse
from reco.runs import RunFolder, run_dir_for
from reco.runtime import read_json


@dataclass(frozen=True)
class Published:
    """One published attempt in ``reco.model_runs``: the version and the run whose folder
    holds its lists (``restored_from`` for a rollback)."""

    run_id: str
    model_version: str
    source_run: str
    finished_at: datetime

    @property
    def folder(self) -> RunFolder:
        return RunFolder(run_dir_for(self.source_run))

    @property
    def restorable(self) -> bool:
        return self.folder.recommendations.exists()


def history(url: str) -> list[Published]:
    """Every published attempt, the one readers see now first."""
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(
            warehouse.named_statements("model_runs.sql")["published_history"],
            {"published": publish.PUBLISHED},
        )
        return [Published(*row) for row in cur.fetchall()]


def choose(published: list[Published], to: str | None) -> Published:
    """The attempt to restore: the latest with version ``to``, or (``to`` None) the latest
    whose version differs from the current one. Raises naming what can be chosen."""
    if not published:
        raise PipelineError("nothing has been published yet: there is nothing to roll back to")
    current = published[0]
    if to is None:
        earlier = [p for p in published if p.model_version != current.model_version]
        if not earlier:
            raise PipelineError(
                f"only {current.model_version} has been published: there is no earlier "
                "version to roll back to"
            )
        return earlier[0]
    if to == current.model_version:
        raise PipelineError(f"{to} is the version readers see now: nothing to roll back")
    matches = [p for p in published if p.model_version == to]
    if not matches:
        raise PipelineError(
            f"{to} was never published. Published versions, newest first: "
            f"{', '.join(versions(published)[:10])} (reco rollback --list)"
        )
    return matches[0]


def versions(published: list[Published]) -> list[str]:
    seen: dict[str, None] = {}
    for p in published:
        seen.setdefault(p.model_version, None)
    return list(seen)


def refuse_pruned(target: Published, published: list[Published]) -> None:
    if target.restorable:
        return
    can = [p.model_version for p in published[1:] if p.restorable]
    raise PipelineError(
        f"{target.model_version} cannot be restored: its lists (run {target.source_run}, "
        f"{target.folder.path}) were pruned by retention. Versions that can be restored: "
        f"{', '.join(dict.fromkeys(can)) or 'none'}. Retention keeps the last "
        "RECO_RETAIN_PUBLISHED published runs: raise it to keep more."
    )


def rollback(
    url: str,
    to: str | None = None,
    *,
    log: Callable[[str], None] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Publish the lists of ``to`` (default: the version before the current one) again;
    returns what was done. Raises :class:`PipelineError` when there is nothing to restore
    or its files were pruned, before touching the published tables."""
    say = log or (lambda _msg: None)
    warehouse.apply_schema(url)
    published = history(url)
    target = choose(published, to)
    refuse_pruned(target, published)
    current = published[0]
    folder = target.folder
    say(f"rolling back from {current.model_version} to {target.model_version} ({folder.path})")
    table = publish.read_recommendations(folder.path)
    similar = publish.read_optional(folder.similar_items, publish.SIMILAR_ITEMS)
    popular = publish.read_optional(folder.popular_items, publish.POPULAR_ITEMS)
    run_id = f"rollback__{(now or datetime.now(UTC)):%Y%m%dT%H%M%SZ}"
    outcomes: list[Any] = []

    def swap() -> int:
        return publish.publish_table(
            url, table, similar=similar, popular=popular, on_swap=outcomes.append, log=say
        )

    rows = recorded(url, run_id, target, current, swap)
    say(f"readers now see {target.model_version}: {rows:,} recommendation rows")
    return {
        "run_id": run_id,
        "from_version": current.model_version,
        "model_version": target.model_version,
        "restored_from": target.source_run,
        "rows": rows,
        "similar_rows": similar.num_rows if similar is not None else 0,
        "popular_rows": popular.num_rows if popular is not None else 0,
        "swap": outcomes[0].summary() if outcomes else None,
        "warehouse": warehouse.describe(url),
    }


def recorded(
    url: str, run_id: str, target: Published, current: Published, swap: Callable[[], int]
) -> int:
    """Run ``swap`` as a published attempt of ``run_id`` in ``reco.model_runs``, carrying
    the restored version, its parameters and metrics, and ``restored_from``; the rows."""
    folder = target.folder
    metrics = read_json(folder.metrics)
    with publish.record_run_start(
        url, run_id, folder.path, target.model_version, metrics
    ) as attempt:
        with warehouse.connection(url) as conn, conn.cursor() as cur:
            cur.execute(
                warehouse.named_statements("model_runs.sql")["mark_restored"],
                {"run_id": run_id, "attempt": attempt.number, "source": target.source_run},
            )
        try:
            rows = swap()
        except Exception as exc:
            publish.record_run_end(
                url, attempt, publish.FAILED, f"{type(exc).__name__}: {exc}", None
            )
            if isinstance(exc, PipelineError):
                raise
            raise PipelineError(
                f"rolling back to {target.model_version} failed and was rolled back (readers "
                f"still see {current.model_version}): {type(exc).__name__}: {exc}"
            ) from exc
        publish.record_run_end(
            url, attempt, publish.PUBLISHED, f"rollback from {current.model_version}", rows
        )
    return rows


def listing(url: str) -> list[dict[str, Any]]:
    """The published versions, newest first, each with whether it can be restored."""
    warehouse.apply_schema(url)
    published = history(url)
    out = []
    for i, p in enumerate(published):
        out.append(
            {
                "model_version": p.model_version,
                "run_id": p.run_id,
                "published_at": p.finished_at.isoformat() if p.finished_at else None,
                "current": i == 0,
                "restorable": p.restorable,
                "folder": str(p.folder.path),
            }
        )
    return out
