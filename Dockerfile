# syntax=docker/dockerfile:1
# The CallPlatform operator image: `callplatform run`, as a non-root user, on a read-only root
# filesystem. Dependencies come from docker/requirements.lock (hash-checked, wheels only); the
# final stage has no compiler, no pip and no caches.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src

# The virtualenv has no pip of its own; the build stage's pip installs into it.
RUN python -m venv --without-pip /opt/venv
COPY docker/requirements.lock docker/requirements-build.lock docker/
RUN python -m pip --python /opt/venv/bin/python install --require-hashes --only-binary=:all: \
        --no-deps -r docker/requirements.lock \
    && python -m venv /opt/build-tools \
    && /opt/build-tools/bin/pip install --require-hashes --only-binary=:all: --no-deps \
        -r docker/requirements-build.lock

COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN /opt/build-tools/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels . \
    && python -m pip --python /opt/venv/bin/python install --no-deps /tmp/wheels/*.whl \
    && /opt/venv/bin/python -c "import callplatform.cli"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="callplatform-operator" \
      org.opencontainers.image.description="Kubernetes operator for a self-hosted video-calling stack" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp

# pip and setuptools are not needed at run time; a fixed numeric user owns nothing in the image.
RUN python -m pip uninstall --yes pip setuptools wheel \
    && groupadd --system --gid 10001 callplatform \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin callplatform
COPY --from=build /opt/venv /opt/venv

USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["callplatform", "run"]
