"""Spark job: CV-selected ranking model, rating model, publish gate.

    spark-submit spark_jobs/train.py --help

The step itself is ``reco.modeling.train``, run through its entry in ``reco/steps.py``;
this file is its spark-submit application.
"""

import sys

from reco import steps

if __name__ == "__main__":
    sys.exit(steps.get("train").main())
