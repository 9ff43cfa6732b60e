# syntax=docker/dockerfile:1
# Base image of every Kubeflow Pipelines component: the whole `remarketing` distribution (core library,
# components, pipelines, serving client) installed with the exact pins of constraints.txt.
#
#   docker build -f docker/components.Dockerfile -t <registry>/components:<git-sha> .
#
# Its reference reaches the pipelines as a compile argument (`remarketing pipelines compile --image ...`),
# never as an environment variable read inside a pipeline definition.
#
# The base is python:3.11.15-slim-bookworm pinned by its OCI index digest (amd64 + arm64); renew the digest
# deliberately (docs/deploy.md). The image runs as an unprivileged numeric user so that Kubernetes'
# runAsNonRoot can verify it.

FROM python:3.11.15-slim-bookworm@sha256:b18992999dbe963a45a8a4da40ac2b1975be1a776d939d098c647482bcad5cba AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY constraints.txt ./
# The build backend is pinned too (pyproject asks for setuptools>=75), then used without isolation.
RUN pip install --no-cache-dir setuptools==84.2.1
COPY pyproject.toml README.md ./
COPY src ./src
COPY components ./components
COPY pipelines ./pipelines
COPY serving ./serving
COPY cloud_functions ./cloud_functions
COPY frontend ./frontend
COPY tracking ./tracking
COPY cli ./cli
COPY local_stack ./local_stack
COPY observability ./observability
COPY cloud_auth ./cloud_auth
RUN pip install --no-cache-dir --no-build-isolation -c constraints.txt ".[pipelines]" \
    && pip check

FROM python:3.11.15-slim-bookworm@sha256:b18992999dbe963a45a8a4da40ac2b1975be1a776d939d098c647482bcad5cba

LABEL org.opencontainers.image.title="remarketing-components" \
      org.opencontainers.image.description="Base image of the Remarketing Kubeflow Pipelines components" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OMP_WAIT_POLICY=PASSIVE \
    HOME=/home/app

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home --shell /usr/sbin/nologin app

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
WORKDIR /home/app
CMD ["remarketing", "--help"]
