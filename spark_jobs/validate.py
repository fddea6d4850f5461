"""Spark job: the data-quality gate on the ingested batch.

    spark-submit spark_jobs/validate.py --help

The step itself is ``reco.validation.validate``, run through its entry in ``reco/steps.py``;
this file is its spark-submit application.
"""

import sys

from reco import steps

if __name__ == "__main__":
    sys.exit(steps.get("validate").main())
