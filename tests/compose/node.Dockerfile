# Stands in for node:20-bookworm-slim where Docker Hub is out of reach: Node's own build of
# node and npm, as their npm registry packages ship them (Debian 12's nodejs is too old for Vite).
# It builds on the python stand-in, for the certificate authorities it trusts.
ARG BASE
FROM ${BASE}
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && node --version && npm --version
