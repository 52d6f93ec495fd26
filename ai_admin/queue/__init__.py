"""The task queue: model, state machine, scheduling, storage. Knows nothing about Docker."""
