"""The Airflow face of newsflow: what the DAGs in ``dags/`` call.

* :mod:`.tasks`: one function per DAG task, plain JSON values in and out (ids and
  counts, never article text), so what travels through XCom stays small;
* :mod:`.context`: where a task finds its database (the Airflow connection
  ``newsflow_db``), its settings (env, then Airflow Variables) and the feeds file;
* :mod:`.callbacks`: failure and retry callbacks (``news.task_failures``, webhook).

Imported only inside running tasks and callbacks, never at DAG parse time. No pipeline
logic lives here: these call the stage functions of the ``newsflow`` package.
"""
