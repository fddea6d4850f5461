"""Spark job: per-arm exposure and click counts of an A/B test.

    spark-submit spark_jobs/ab_aggregate.py --help

The step itself is ``reco.experiments.aggregate``; this file is its spark-submit entry
point.
"""

import sys

from reco.experiments import aggregate
from reco.runtime import main_for


def main(argv: list[str] | None = None) -> int:
    return main_for(aggregate.STAGE, aggregate.build_parser, aggregate.step, argv)


if __name__ == "__main__":
    sys.exit(main())
