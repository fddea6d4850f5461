"""Spark job: top-N per user and similar items per item.

    spark-submit spark_jobs/recommend.py --help

The step itself is ``reco.modeling.recommend``; this file is its spark-submit entry point.
"""

import sys

from reco.modeling import recommend
from reco.runtime import main_for


def main(argv: list[str] | None = None) -> int:
    return main_for(recommend.STAGE, recommend.build_parser, recommend.step, argv)


if __name__ == "__main__":
    sys.exit(main())
