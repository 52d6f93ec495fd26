# The agent in a container, driving the host's Docker engine through its socket.
# README.md ("Running the agent in a container") explains each flag:
#   docker build -t ai-admin .
#   docker run -d --name ai-admin -p 127.0.0.1:8060:8060 -e AI_ADMIN_TOKEN \
#     --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v /var/run/docker.sock:/var/run/docker.sock -v ai-admin-data:/data ai-admin
#
# BASE_IMAGE: any image with Python 3.11+, pip and a POSIX shell. The tests build this file on a
# base image they make from the machine's own Python, as no registry is reachable there.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

COPY pyproject.toml README.md LICENSE /src/
COPY ai_admin /src/ai_admin
RUN python -m pip install /src && rm -rf /src

# Found without being named (the search order ends at /etc/ai-admin/config.toml); mount your
# own file over it, or set AI_ADMIN_* variables.
COPY config/ai-admin.toml /etc/ai-admin/config.toml

# An unprivileged user of its own, written straight into /etc/passwd so any base image will do.
# It reaches the Docker socket through the socket's group, added at run time with --group-add.
RUN echo "ai-admin:x:10001:10001:ai-admin:/data:/sbin/nologin" >> /etc/passwd \
    && echo "ai-admin:x:10001:" >> /etc/group \
    && mkdir -p /data && chown 10001:10001 /data && chmod 0700 /data
USER 10001:10001

# Listening on every interface needs a token: AI_ADMIN_TOKEN, or the file
# /run/secrets/ai_admin_token. Running tasks get AI_ADMIN_SHUTDOWN_GRACE_S to finish after
# `docker stop` (the rest is re-queued for the next start): 7 s fits inside Docker's default
# 10 s stop timeout. Raise both together: -e AI_ADMIN_SHUTDOWN_GRACE_S=60 --stop-timeout 70.
ENV AI_ADMIN_HOST=0.0.0.0 \
    AI_ADMIN_DATA_DIR=/data \
    AI_ADMIN_SHUTDOWN_GRACE_S=7
EXPOSE 8060
VOLUME ["/data"]

# Healthy while the agent answers /health and reaches its Docker engine; only Python, no curl.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD ["ai-admin", "health", "--timeout", "5"]
CMD ["ai-admin", "serve"]
