"""Spark job: raw ratings (and feedback events) -> typed, deduplicated Parquet.

    spark-submit spark_jobs/ingest.py --help

The step itself is ``reco.data.ingest``; this file is its spark-submit entry point.
"""

import sys

from reco.data import ingest
from reco.runtime import main_for


def main(argv: list[str] | None = None) -> int:
    return main_for(ingest.STAGE, ingest.build_parser, ingest.step, argv)


if __name__ == "__main__":
    sys.exit(main())
