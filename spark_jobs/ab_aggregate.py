"""Spark job: per-arm exposure and click counts of an A/B test.

    spark-submit spark_jobs/ab_aggregate.py --help

The step itself is ``reco.experiments.aggregate``, run through its entry in ``reco/steps.py``;
this file is its spark-submit application.
"""

import sys

from reco import steps

if __name__ == "__main__":
    sys.exit(steps.get("ab_aggregate").main())
