"""Spark job: the data-quality gate on the ingested batch.

    spark-submit spark_jobs/validate.py --help

The step itself is ``reco.validation.validate``; this file is its spark-submit entry point.
"""

import sys

from reco.runtime import main_for
from reco.validation import validate


def main(argv: list[str] | None = None) -> int:
    return main_for(validate.STAGE, validate.build_parser, validate.step, argv)


if __name__ == "__main__":
    sys.exit(main())
