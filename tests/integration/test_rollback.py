"""Rollback against the real embedded PostgreSQL, with apps reading through
``reco.recommend()``, the v1 views and the tables: the earlier lists come back exactly,
through the same swap as a publish, recorded in reco.model_runs with the champion moved;
a version whose files were pruned is refused and nothing changes."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pyarrow.parquet as pq
import pytest

from reco import cli, config
from reco.errors import PipelineError
from reco.publishing import publish, rollback, warehouse
from tests.support.published import KEYS, expected, live, write_run
from tests.support.readers import Readers, tally


def champion(url: str) -> str:
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(warehouse.named_statements("model_runs.sql")["champion"])
        return cur.fetchone()[0]


@pytest.fixture()
def two_published(warehouse_url: str) -> Iterator[dict[str, dict[str, list[tuple]]]]:
    """Runs publishing als-v1 then als-v2 through ``reco publish``'s code; yields what the
    tables held after each."""
    seen = {}
    for k in (1, 2):
        folder = write_run(config.RUNS_DIR / f"rollback-test-{k}", k)
        publish.run(warehouse_url, folder.path, f"rollback-test-{k}")
        seen[f"als-v{k}"] = live(warehouse_url)
    yield seen
    for k in (1, 2):
        shutil.rmtree(config.RUNS_DIR / f"rollback-test-{k}", ignore_errors=True)


def test_rollback_restores_the_earlier_lists_exactly_with_readers_live(
    warehouse_url: str, two_published, capsys
) -> None:
    assert live(warehouse_url) == two_published["als-v2"]
    assert two_published["als-v1"] != two_published["als-v2"]
    with Readers(warehouse_url, KEYS) as readers:
        readers.wait_for_reads(300)
        done = rollback.rollback(warehouse_url)
        readers.wait_for_reads(300)
        results = readers.stop()
    t = tally(results, expected)
    with capsys.disabled():
        print(f"\nrollback under readers: {t.line()}; swap {done['swap']}")
    assert t.errors == [] and t.malformed == [] and t.wrong == []
    assert {v for r in results for (_, v) in r.answers} == {"als-v1", "als-v2"}
    # The same lists as when als-v1 was published: every row, score and generated_at.
    assert live(warehouse_url) == two_published["als-v1"]
    assert (done["from_version"], done["model_version"]) == ("als-v2", "als-v1")
    assert done["restored_from"] == "rollback-test-1" and done["swap"]["tries"] >= 1
    assert (
        done["rows"]
        == pq.read_metadata(
            config.RUNS_DIR / "rollback-test-1" / "recommendations.parquet"
        ).num_rows
    )
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT model_version, status, restored_from, status_reason, n_published "
            "FROM reco.model_runs WHERE run_id = %s",
            (done["run_id"],),
        )
        assert cur.fetchall() == [
            ("als-v1", "published", "rollback-test-1", "rollback from als-v2", done["rows"])
        ]
    assert champion(warehouse_url) == "als-v1"
    # Rolling back again (no version given) undoes it: back to als-v2, exactly.
    again = rollback.rollback(warehouse_url)
    assert again["model_version"] == "als-v2" and live(warehouse_url) == two_published["als-v2"]
    assert champion(warehouse_url) == "als-v2"


def test_a_pruned_version_is_refused_and_nothing_changes(warehouse_url: str, two_published) -> None:
    shutil.rmtree(config.RUNS_DIR / "rollback-test-1")
    before = live(warehouse_url)
    with pytest.raises(PipelineError) as err:
        rollback.rollback(warehouse_url, "als-v1")
    message = str(err.value)
    assert "als-v1 cannot be restored" in message and "pruned by retention" in message
    assert "RECO_RETAIN_PUBLISHED" in message
    assert live(warehouse_url) == before
    with pytest.raises(PipelineError, match="als-v9 was never published.*als-v2, als-v1"):
        rollback.rollback(warehouse_url, "als-v9")
    with pytest.raises(PipelineError, match="als-v2 is the version readers see now"):
        rollback.rollback(warehouse_url, "als-v2")
    assert live(warehouse_url) == before


def test_reco_rollback_lists_then_restores_a_version(
    warehouse_url: str, two_published, capsys
) -> None:
    assert cli.main(["rollback", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "als-v2" in listing and "als-v1" in listing and "current" in listing
    assert cli.main(["rollback", "--to", "als-v1"]) == 0
    out = capsys.readouterr().out
    assert "readers now see als-v1" in out
    assert live(warehouse_url) == two_published["als-v1"]
    shutil.rmtree(config.RUNS_DIR / "rollback-test-2")
    assert cli.main(["rollback", "--to", "als-v2"]) == 2
    err = capsys.readouterr().err
    assert "als-v2 cannot be restored" in err
    assert live(warehouse_url) == two_published["als-v1"]
