"""RQ jobs and the worker process (``python -m workers``)."""
