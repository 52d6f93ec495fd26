"""The Docker side of ai-admin: executors for build, push and pull, and the error classifier."""
