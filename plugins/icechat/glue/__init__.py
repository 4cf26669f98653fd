"""The thin Airflow layer: connections to core objects, operators and sensors calling the core."""
