# leadsync: slim Python 3.11, non-root, SQLite store on a volume, health checked on /healthz.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    LEADSYNC_CONFIG=/etc/leadsync/leadsync.toml

WORKDIR /app
COPY pyproject.toml README.md ./
COPY leadsync ./leadsync
COPY connectors ./connectors
RUN pip install . && useradd --system --uid 10001 --home /data leadsync \
    && mkdir -p /data /etc/leadsync && chown leadsync /data

USER leadsync
WORKDIR /data
# The default store is sqlite:///leadsync.db, relative to /data: keep it on a volume.
VOLUME ["/data"]
EXPOSE 8080

# Asks /healthz on the port the config names ([server] port), not a port written here.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["leadsync", "healthcheck"]

CMD ["leadsync", "run"]
