"""Airflow UI plugin: the run reports under a "Reports" menu, behind Airflow's login."""

from airflow.api_fastapi.core_api.security import get_user
from airflow.plugins_manager import AirflowPlugin

from reco.reporting.reports_app import build_app


class RecoReportsPlugin(AirflowPlugin):
    name = "reco_reports"
    fastapi_apps = [
        {
            "app": build_app(login=get_user),
            "url_prefix": "/reco-reports",
            "name": "Recommendation reports",
        }
    ]
    external_views = [
        {
            "name": "Latest run report",
            "href": "reco-reports/latest.html",
            "destination": "nav",
            "category": "Reports",
            "url_route": "reco-latest-report",
        },
        {
            "name": "All run reports",
            "href": "reco-reports/",
            "destination": "nav",
            "category": "Reports",
            "url_route": "reco-reports",
        },
    ]
