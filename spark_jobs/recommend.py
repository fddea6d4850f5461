"""Spark job: top-N per user and similar items per item.

    spark-submit spark_jobs/recommend.py --help

The step itself is ``reco.modeling.recommend``, run through its entry in ``reco/steps.py``;
this file is its spark-submit application.
"""

import sys

from reco import steps

if __name__ == "__main__":
    sys.exit(steps.get("recommend").main())
