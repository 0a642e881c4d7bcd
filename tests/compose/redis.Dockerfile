# Stands in for redis:7-alpine where Docker Hub is out of reach: Debian's redis-server.
ARG BASE
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/*
# The official image turns protected mode off, so that other containers may connect; so does
# this redis-server, which comes first on PATH.
RUN printf '#!/bin/sh\nexec /usr/bin/redis-server "$@" --protected-mode no\n' >/usr/local/bin/redis-server \
    && chmod 755 /usr/local/bin/redis-server
WORKDIR /data
CMD ["redis-server"]
