# Stands in for postgres:16-alpine where Docker Hub is out of reach: Debian's PostgreSQL, set up
# from POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB as the official image does.
ARG BASE
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql \
    && rm -rf /var/lib/apt/lists/*
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENTRYPOINT ["/bin/sh", "/usr/local/bin/postgres-entrypoint.sh"]
