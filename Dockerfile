# The Airflow image the compose stack runs: Airflow 3.3.2 with gpg, the SSH client and the
# icechat package (its CLI and dependencies) installed, and the DAGs baked in.
# Build: docker compose build   (or: docker build -t icechat-archiver .)
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}

USER root
# gpg decrypts the exports; ssh-keygen and ssh help when setting up the SFTP login.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gnupg openssh-client \
    && apt-get autoremove -yqq --purge \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

USER airflow
# Dependencies first, so a code change does not reinstall them. Naming the image's own
# Airflow version makes pip refuse, rather than silently change, a mismatched Airflow.
COPY --chown=airflow:0 requirements.txt /opt/icechat-src/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" \
    -r /opt/icechat-src/requirements.txt

COPY --chown=airflow:0 . /opt/icechat-src
RUN pip install --no-cache-dir --no-deps /opt/icechat-src \
    && mkdir -p /opt/airflow/dags /opt/airflow/icechat \
    && cp -R /opt/icechat-src/dags/. /opt/airflow/dags/
