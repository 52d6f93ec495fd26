# The agent in a container, driving the host's Docker engine through its socket:
#   docker build -t ai-admin .
#   docker run -d -p 127.0.0.1:8060:8060 -v /var/run/docker.sock:/var/run/docker.sock \
#     -v ai-admin-data:/data ai-admin
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY ai_admin ./ai_admin
COPY config ./config
RUN pip install --no-cache-dir . && useradd --system --home /data ai-admin \
    && mkdir -p /data && chown ai-admin /data

ENV AI_ADMIN_DATA_DIR=/data \
    AI_ADMIN_CONFIG=/app/config/ai-admin.toml \
    AI_ADMIN_HOST=0.0.0.0
EXPOSE 8060
VOLUME ["/data"]
# Root inside the container is needed to use the mounted socket unless its group is mapped in
# (docker run --group-add $(stat -c %g /var/run/docker.sock) --user ai-admin ...).
CMD ["ai-admin", "serve"]
