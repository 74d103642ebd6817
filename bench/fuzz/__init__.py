"""Property-based fuzzing of every request the three services take, through real servers.

Shared by the fast deterministic set in ``tests/fuzz`` and the 10,000-case run in
``bench/bench_fuzz.py``: :mod:`.values` and :mod:`.graphs` make hostile values, :mod:`.cases`
turns them into requests of each RPC, :mod:`.target` reaches the running services, MinIO and
the ComfyUI simulator, :mod:`.checks` holds the properties every answer must have, and
:mod:`.runner` feeds Hypothesis' examples to the servers from a worker thread.
"""
