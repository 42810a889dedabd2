"""The Celery peer of gust's distributed benchmark (tests/bench/celery/README.md tells the method).

Configured as Airflow's CeleryExecutor configures Celery (airflow/providers/celery/executors/
default_celery.py), plus publisher confirms: RabbitMQ broker, acks_late, prefetch multiplier 1,
task_track_started, JSON only, results in PostgreSQL through Celery's database backend.

Environment (run.sh sets it): GUST_TEST_AMQP_URL, GUST_TEST_PG_URL, CELERY_BENCH_QUEUE (a name
unique to the run; also the result tables' prefix, so concurrent runs do not meet),
CELERY_BENCH_DB (the result database on GUST_TEST_PG_URL's server; gust_celery_bench).
"""
import os
import subprocess
import time
import urllib.parse

from celery import Celery

AMQP_URL = os.environ.get("GUST_TEST_AMQP_URL", "amqp://gust:gust@127.0.0.1:55672/")
PG_URL = os.environ.get("GUST_TEST_PG_URL", "postgresql://gust:gust@127.0.0.1:55432/gust")
QUEUE = os.environ.get("CELERY_BENCH_QUEUE", "celery_bench")
# Results go to the same PostgreSQL server as gust's, in a database of their own (created by
# driver.py prepare) so that the benchmark's tables never show up in gust's test database.
RESULT_DB = os.environ.get("CELERY_BENCH_DB", "gust_celery_bench")


def with_database(url, name):
    """URL with its database (path) replaced by NAME."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


RESULT_URL = with_database(PG_URL, RESULT_DB)

app = Celery("gust_celery_bench")
app.conf.update(
    broker_url=AMQP_URL,
    broker_transport_options={"confirm_publish": True},
    result_backend="db+" + RESULT_URL,
    database_table_names={"task": QUEUE + "_taskmeta", "group": QUEUE + "_groupmeta"},
    accept_content=["json"],
    task_serializer="json",
    result_serializer="json",
    event_serializer="json",
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_track_started=True,
    task_default_queue=QUEUE,
    task_default_exchange=QUEUE,
    worker_enable_remote_control=True,
    worker_hijack_root_logger=True,
)


@app.task(name="bench.run_bash")
def run_bash(command):
    """Run COMMAND with `bash -c`, as gust's (and Airflow's) bash operator does.

    Returns [start, end]: wall-clock seconds (time.time()) around the task body."""
    start = time.time()
    subprocess.run(["bash", "-c", command], check=True, close_fds=True)
    return [start, time.time()]
