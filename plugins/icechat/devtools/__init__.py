"""Local stand-ins for the outside systems, and the demo built on them.

An OpenSSH ``sshd`` serving a directory over SFTP, the Graph emulator, and the driver behind
``make demo`` / ``make airflow``. Tests and the demo use them; the DAG never imports them.
"""
