"""icechat-archiver: archive ICE Chat compliance exports into Microsoft 365 mailboxes.

The package root holds the Airflow-free core; ``icechat.glue`` is the thin Airflow layer.
"""

__version__ = "0.1.0"
