"""A/B tests of the recommendations: does showing them lift clicks?

Each module does one thing: ``simulate`` (a seeded experiment with a known truth),
``aggregate`` (the Spark step: counts per arm), ``stats`` (pure statistics and the
business-impact estimate), ``store`` (``reco.ab_test_results``), ``page`` (chart and
HTML from templates) and ``analysis`` (the DAG's analyse task, which chains them).
"""
