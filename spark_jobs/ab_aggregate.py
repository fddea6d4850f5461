"""Spark job: per-arm exposure and click counts of an A/B test.

    spark-submit spark_jobs/ab_aggregate.py --help

The step itself is ``reco.experiments.abtest``; this file is its spark-submit entry point.
"""

import sys

from reco.experiments import abtest
from reco.runtime import main_for


def main(argv: list[str] | None = None) -> int:
    return main_for(abtest.STAGE, abtest.build_parser, abtest.step, argv)


if __name__ == "__main__":
    sys.exit(main())
