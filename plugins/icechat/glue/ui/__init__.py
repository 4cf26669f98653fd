"""The operator's view in Airflow's UI: the ICE Chat page, a report tab on each run, the search.

A FastAPI app served by Airflow's API server under ``/icechat`` (``app``) and the plugin
that registers it with its ``external_views`` (``plugin``). Every page requires a user
Airflow authenticates who may read the ``icechat_archive`` DAG's runs: they hold personal data.
"""
