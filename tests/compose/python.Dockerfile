# Stands in for python:3.11-slim-bookworm where Docker Hub is out of reach: Debian's python3
# (from the debootstrap tarball this builds on), trusting what this machine trusts, since its
# way to PyPI and npm may pass through a TLS proxy with a certificate authority of its own.
ARG BASE
FROM ${BASE}
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
