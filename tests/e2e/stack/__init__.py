"""The Airflow stack's tests. A package, so the stack (a package-scoped fixture) is
stopped right after its last test, not at the end of the session: a scheduler still
running on the test metadata database fails the tasks of later in-process dag.test runs."""
