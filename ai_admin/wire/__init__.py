"""What crosses the doors, typed once: the reply envelope, the task views, the queue statistics,
the event and each command's result, as pydantic models.

- ``envelope``: ``{"success", "action", "data" | "error"}``, built here and nowhere else, and
  its JSON schema for any command's result;
- ``task``: a task as clients see it (``TaskView``) and its status summary (``TaskSummary``),
  defined and built by the queue (``ai_admin.queue.views``) and named here;
- ``stats``: the queue statistics (``QueueStatistics``) and the counters in them, likewise
  (``ai_admin.queue.stats_views``);
- ``events``: the JSON schema of ``ai_admin.queue.events.TaskEvent``, the one event type;
- ``results``: one result model per command (the command registry names it).

The models describe what the agent emits, so each forbids keys it does not name: a test
validates real answers, through HTTP and MCP, against the schemas derived from them
(``tests/integration/test_wire_schemas.py``). The layer sits between the queue (whose
types it describes) and the commands and doors (which emit and document them); a client of
the agent may import it without loading the commands or Docker.
"""
