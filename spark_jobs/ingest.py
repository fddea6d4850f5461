"""Spark job: raw ratings (and feedback events) -> typed, deduplicated Parquet.

    spark-submit spark_jobs/ingest.py --help

The step itself is ``reco.data.ingest``, run through its entry in ``reco/steps.py``;
this file is its spark-submit application.
"""

import sys

from reco import steps

if __name__ == "__main__":
    sys.exit(steps.get("ingest").main())
