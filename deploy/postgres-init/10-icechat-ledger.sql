-- The icechat import ledger lives in its own database beside Airflow's metadata database.
-- Postgres runs this once, when the postgres-db-volume is first initialised.
CREATE DATABASE icechat_ledger OWNER airflow;
