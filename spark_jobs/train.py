"""Spark job: CV-selected ranking model, rating model, publish gate.

    spark-submit spark_jobs/train.py --help

The step itself is ``reco.modeling.train``; this file is its spark-submit entry point.
"""

import sys

from reco.modeling import train
from reco.runtime import main_for


def main(argv: list[str] | None = None) -> int:
    return main_for(train.STAGE, train.build_parser, train.step, argv)


if __name__ == "__main__":
    sys.exit(main())
