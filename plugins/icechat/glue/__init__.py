"""The thin Airflow layer: connections to core objects, the sensor the DAG waits with."""
