# syntax=docker/dockerfile:1
# The CallPlatform operator image: `callplatform run`, as a non-root user, on a read-only root
# filesystem. Dependencies come from docker/requirements.lock (hash-checked, wheels only); the
# final stage has no compiler, no pip and no caches.
#
# BASE_IMAGE is any Debian-family image with Python 3.11 at the same path in both stages: the public
# python image by default, or the Debian-package base scripts/build-image.sh makes with mmdebstrap.

ARG BASE_IMAGE=python:3.11.14-slim-bookworm

FROM ${BASE_IMAGE} AS build
# PIP_CERT: the system CA store, which a builder may bind-mount read-only from its host.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src

# pip lives only in this stage, in a virtualenv of its own (Debian's python3 has none); it installs
# into /opt/venv, which has no pip.
COPY docker/requirements.lock docker/requirements-build.lock docker/
RUN python3 -m venv /opt/build-tools \
    && /opt/build-tools/bin/pip install --require-hashes --only-binary=:all: --no-deps \
        -r docker/requirements-build.lock \
    && python3 -m venv --without-pip /opt/venv \
    && /opt/build-tools/bin/pip --python /opt/venv/bin/python install --require-hashes \
        --only-binary=:all: --no-deps -r docker/requirements.lock

COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN /opt/build-tools/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels . \
    && /opt/build-tools/bin/pip --python /opt/venv/bin/python install --no-deps /tmp/wheels/*.whl \
    && /opt/venv/bin/python -c "import callplatform.cli"

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="callplatform-operator" \
      org.opencontainers.image.description="Kubernetes operator for a self-hosted video-calling stack" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp

# pip and setuptools are not needed at run time (the public python image has them, a Debian base
# does not); a fixed numeric user owns nothing in the image.
RUN if python3 -m pip --version >/dev/null 2>&1; then \
        python3 -m pip uninstall --yes pip setuptools wheel; \
    fi \
    && groupadd --system --gid 10001 callplatform \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin callplatform
COPY --from=build /opt/venv /opt/venv

USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["callplatform", "run"]
