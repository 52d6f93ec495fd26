"""Schedules and housekeeping, on one APScheduler ``AsyncIOScheduler`` per queue engine.

- ``spec``: when a schedule fires (five-field cron, an interval, or one ISO 8601 time, in an
  IANA time zone), validated into an APScheduler trigger;
- ``model``: a schedule as it is stored (its command message, the task it submits, its firing
  state) and as clients see it (``ScheduleView``);
- ``service``: the schedules kept in the agent's store and run on the scheduler: each firing
  submits the schedule's task through the queue engine;
- ``retention`` and ``history``: the housekeeping jobs (finished tasks deleted by age and by
  count with the space given back; snapshots of the queue's counters), and ``trends``: the
  per-hour and per-day figures computed from those snapshots;
- ``scheduler``: the one ``AsyncIOScheduler`` all of these run on, started after the engine and
  stopped before it closes.

The scheduler's job store is in memory: the agent's store is the truth, and the jobs are made
again from it at every start. Only this package imports ``apscheduler``.
"""
