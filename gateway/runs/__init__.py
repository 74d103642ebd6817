"""Durable runs: queued in NATS JetStream, executed by any gateway worker, watched from any replica.

Where things live (one owner each):

* the **run record** in a JetStream key-value bucket (:mod:`gateway.runs.store`) is the
  source of truth for a run's state: QUEUED, RUNNING, a final state, which outputs are
  done, who holds the claim. Every state change is written there first, with
  compare-and-set, before anything acts on it;
* the **work queue** (:mod:`gateway.runs.queue`), one work-queue stream per priority, holds a
  run until a worker acknowledges it; the message's delivery count is the claim that a
  live worker renews with heartbeats and a dead one lets lapse;
* the **event log** (:mod:`gateway.runs.events`), one stream with a subject per run, is what
  watchers read; it is derived from what the worker did and written after the record.

:mod:`gateway.runs.worker` executes a run with the same pipeline as ``Generate``
(:class:`gateway.output.OutputRunner`), :mod:`gateway.runs.engine` is what the servicer calls.
"""
