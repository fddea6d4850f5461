"""Publishing while apps read: whole ML-100K publishes under readers of every path.

Trains two ML-100K models (A and B: different ALS ranks) with ``reco run`` in a state
folder of its own (its own embedded PostgreSQL), records what each version publishes for
every user and item, then:

1. publishes A, B, A, B, ... (``--publishes``, the publish step as a run does it: schema,
   attempt row, COPY, swap) while reader processes query ``reco.recommend()``, each
   ``reco.v1_*`` view and the tables in a loop; every answer is checked against the list
   its version published (no error, no partial or mixed list);
2. keeps a transaction that has read ``reco.recommendations`` open for ``--hold`` seconds
   during one more publish, and shows how long reads through ``reco.recommend()`` waited
   and when the publish landed.

Prints a markdown table and writes ``bench/results/publish_concurrency.json``. Not part of
the test suite; ``python -m bench.publish_concurrency`` (about 6 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(tempfile.mkdtemp(prefix="reco-bench-concurrency-"))
os.environ["RECO_VAR_DIR"] = str(STATE)  # before reco.config is imported
os.environ.pop("WAREHOUSE_URL", None)

import psycopg2  # noqa: E402

from reco import config  # noqa: E402
from reco.publishing import publish, warehouse  # noqa: E402
from tests.support.readers import READ_PATHS, Readers, tally  # noqa: E402

MODELS = {
    "A": '{"rank": [32], "regParam": [0.2], "alpha": [0.5], "maxIter": [8]}',
    "B": '{"rank": [16], "regParam": [0.2], "alpha": [0.5], "maxIter": [8]}',
}


def train(dataset: Path, name: str) -> Path:
    """One ``reco run`` with fixed parameters; returns its run folder."""
    before = set(config.RUNS_DIR.glob("*")) if config.RUNS_DIR.exists() else set()
    cmd = [
        str(ROOT / ".venv" / "bin" / "reco"),
        "run",
        "--dataset",
        str(dataset),
        "--folds",
        "0",
        "--families",
        "als",
        "--ranking-grid",
        MODELS[name],
        "--gate-tolerance",
        "1",
        "--max-row-drop",
        "1",
    ]
    print(f"training model {name}: {' '.join(cmd[1:])}", flush=True)
    subprocess.run(cmd, check=True, env=os.environ, stdout=subprocess.DEVNULL)
    [run_dir] = [p for p in config.RUNS_DIR.glob("*") if p not in before]
    return run_dir


def snapshot(url: str, keys: dict[str, list[int]]) -> dict[tuple[str, int], tuple[int, ...]]:
    """What every read path answers for every key, right now (no publish running)."""
    out = {}
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        for path, path_keys in keys.items():
            for key in path_keys:
                cur.execute(READ_PATHS[path], {"key": key})
                out[(path, key)] = tuple(r[1] for r in cur.fetchall())
    return out


def versions(url: str) -> set[str]:
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT DISTINCT model_version FROM reco.recommendations")
        return {r[0] for r in cur.fetchall()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=config.MOVIELENS_DIR / "ml-100k")
    parser.add_argument("--publishes", type=int, default=6)
    parser.add_argument("--per-path", type=int, default=2, help="reader processes per path")
    parser.add_argument(
        "--hold", type=float, default=60.0, help="seconds the reading transaction stays open"
    )
    args = parser.parse_args(argv)

    runs = {name: train(args.dataset, name) for name in MODELS}
    url = warehouse.resolve_url()
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT max(user_id) FROM reco.recommendations")
        users = list(range(1, cur.fetchone()[0] + 1))
        cur.execute("SELECT item_id FROM reco.items ORDER BY item_id")
        items = [r[0] for r in cur.fetchall()]
    keys = {
        "recommend()": users,
        "v1_recommendations": users,
        "v1_similar_items": items,
        "v1_popular_items": [1],
        "recommendations": users,
    }
    expected: dict[tuple[str, int, str], tuple[int, ...]] = {}
    for name, run_dir in runs.items():
        publish.run(url, run_dir, run_id=f"bench-snapshot-{name}")
        [version] = versions(url)
        for (path, key), answer in snapshot(url, keys).items():
            expected[(path, key, version)] = answer

    # 1. Whole publishes under readers of every path.
    outcomes = []
    t0 = time.monotonic()
    with Readers(url, keys, per_path=args.per_path) as readers:
        readers.wait_for_reads(2000)
        for i in range(args.publishes):
            name = "AB"[i % 2]
            result = publish.run(url, runs[name], run_id=f"bench-{i}-{name}")
            outcomes.append(result["swap"])
            print(f"publish {i + 1}/{args.publishes} ({name}): swap {result['swap']}", flush=True)
            readers.wait_for_reads(2000)
        results = readers.stop()
    seconds = time.monotonic() - t0
    publishes = tally(results, lambda path, key, v: expected.get((path, key, v)))

    # 2. A transaction that read the table, open for --hold seconds, during one publish.
    analyst = psycopg2.connect(url, application_name="bench-analyst")
    analyst.cursor().execute("SELECT count(*) FROM reco.recommendations")
    box: dict[str, Any] = {}
    started = time.monotonic()

    def publisher() -> None:
        box["result"] = publish.run(url, runs["A"], run_id="bench-held")
        box["landed_s"] = time.monotonic() - started

    read_keys = {p: keys[p] for p in ("recommend()", "v1_recommendations", "v1_popular_items")}
    with Readers(url, read_keys, per_path=args.per_path) as readers:
        thread = threading.Thread(target=publisher)
        thread.start()
        time.sleep(args.hold)  # the analyst's transaction, open this long
        analyst.rollback()
        released_s = time.monotonic() - started
        thread.join()
        readers.wait_for_reads(2000)
        held_results = readers.stop()
    analyst.close()
    held = tally(held_results, lambda path, key, v: expected.get((path, key, v)))

    report = {
        "dataset": str(args.dataset),
        "publishes": args.publishes,
        "readers": args.per_path * len(keys),
        "seconds": round(seconds, 1),
        "under_publishes": publishes.__dict__ | {"errors": publishes.errors[:20]},
        "swaps": outcomes,
        "held": {
            "hold_s": args.hold,
            "released_s": round(released_s, 1),
            "landed_s": round(box["landed_s"], 1),
            "swap": box["result"]["swap"],
            "reads": held.__dict__ | {"errors": held.errors[:20]},
        },
    }
    for t in (report["under_publishes"], report["held"]["reads"]):
        t["malformed"], t["wrong"] = t["malformed"][:20], t["wrong"][:20]
    out = ROOT / "bench" / "results" / "publish_concurrency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))

    tries = [o["tries"] for o in outcomes]
    print()
    print("| scenario | reads | errors | partial or mixed | wait p99 | wait max | swap tries |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {args.publishes} ML-100K publishes, {report['readers']} readers | {publishes.reads} "
        f"| {len(publishes.errors)} | {len(publishes.malformed) + len(publishes.wrong)} "
        f"| {publishes.p99_ms:.1f} ms | {publishes.max_ms:.0f} ms | {tries} |"
    )
    print(
        f"| a transaction open {args.hold:.0f} s during a publish | {held.reads} "
        f"| {len(held.errors)} | {len(held.malformed) + len(held.wrong)} "
        f"| {held.p99_ms:.1f} ms | {held.max_ms:.0f} ms | {box['result']['swap']['tries']} |"
    )
    print(
        f"\nThe held publish landed {box['landed_s']:.1f} s after it started, "
        f"{box['landed_s'] - released_s:.1f} s after the transaction ended. Wrote {out}"
    )
    warehouse.stop_embedded()
    shutil.rmtree(STATE, ignore_errors=True)
    ok = not (publishes.errors or publishes.malformed or publishes.wrong or held.errors)
    return 0 if ok and not (held.malformed or held.wrong) else 1


if __name__ == "__main__":
    sys.exit(main())
