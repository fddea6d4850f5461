"""Helpers shared by the test tiers: local servers and ports, the Airflow stack."""
