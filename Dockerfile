# The studio's own image: the web server and the workers run from it (see compose.yaml).
# Three stages, so that the image keeps only what production needs: Node builds the frontend,
# pip fills a virtual environment with the runtime requirements (never the tests' ones), and the
# final stage takes those two results and the code. Base images are build arguments, so that a
# machine without Docker Hub can name its own (compose.yaml passes PYTHON_IMAGE and NODE_IMAGE).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS frontend
WORKDIR /frontend
# The lock file first: editing the sources then reuses the (slow) install from the cache.
COPY frontend/package.json frontend/package-lock.json ./
# npm can exit 0 after failing to fetch ("Exit handler never called!"): check that it installed.
RUN npm ci --no-audit --no-fund && test -x node_modules/.bin/vite
COPY frontend/ ./
# The page's event types are generated from the engine's schema, and checked against it.
COPY builds/engine/events.schema.json /builds/engine/events.schema.json
RUN npm run build

FROM ${PYTHON_IMAGE} AS python
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# A virtual environment is one directory to copy, and works on Debian's own python3 as well.
RUN python3 -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install -r /tmp/requirements.txt

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH

# busybox-static is the base image the studio seeds, so a fresh studio can build with no registry;
# python3-seccomp compiles the sandbox's system-call filter (with Debian's /usr/bin/python3).
RUN apt-get update \
    && apt-get install -y --no-install-recommends busybox-static python3-seccomp \
    && rm -rf /var/lib/apt/lists/*

COPY --from=python /opt/venv /opt/venv
WORKDIR /app
# .dockerignore leaves out the tests, the benchmark, the docs and every local build product.
COPY . .
COPY --from=frontend /frontend/dist frontend/dist
# Compiled once here, as `make run` does, since the engine's command line starts often.
RUN python -m compileall -q builds studio

EXPOSE 8000
CMD ["uvicorn", "studio.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--lifespan", "off"]
