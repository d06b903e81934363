# syntax=docker/dockerfile:1
# image_repo: build the wheels in one stage, run them in a slim one as a non-root user.
#   docker build -t image-repo .
#   docker run -p 18080:8080 --env-file docker/image_repo.env image-repo
# The server listens on 8080 inside the container (not 80 as in 2016): it does not run as
# root, and an unprivileged process cannot bind below 1024 everywhere (e.g. Kubernetes).
#
# Only what python:3.11-slim and a plain Debian image with python3, python3-venv and
# python3-pip share is used (the suite builds it on such a stand-in, tests/container/): so
# "python3" and "python3 -m pip", never "python"/"pip", whose paths differ between the two.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# The dependencies first, in a layer of their own: it is rebuilt only when setup.cfg changes.
COPY setup.cfg ./
RUN python3 -c "import configparser; c = configparser.ConfigParser(); c.read('setup.cfg'); print(c['options']['install_requires'])" > requirements.txt \
 && python3 -m pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.txt
COPY pyproject.toml README.md package.json package-lock.json ./
COPY image_repo ./image_repo
# OpenSeadragon for the browse page's deep zoom: npm ci copies it into image_repo/ui/vendor/,
# so the wheel carries it and the runtime image needs no node. Where node cannot be had the
# build goes on, and the page shows plain images, saying why.
RUN (command -v npm >/dev/null || (apt-get update && apt-get install -y --no-install-recommends nodejs npm)) \
    && npm ci --no-audit --no-fund --loglevel=error \
    || echo "no node/npm: the browse page will show plain images, without deep zoom" >&2
# Wheels for the package and every dependency, so the runtime stage needs no compiler.
RUN python3 -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8080 \
    IMAGE_REPO_DATA_DIR=/var/lib/image_repo
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/image_repo --create-home \
        --shell /usr/sbin/nologin image_repo
COPY --from=build /wheels /wheels
RUN python3 -m pip install --no-cache-dir --no-index --find-links /wheels image_repo && rm -rf /wheels
COPY docker/entrypoint.py /usr/local/bin/image_repo-entrypoint
# For running the WSGI module under a plain gunicorn command instead of the entrypoint.
COPY docker/gunicorn.conf.py /etc/image_repo/gunicorn.conf.py
# The disk cache (and the file stores, if no Swift/S3 is configured) live here.
VOLUME /var/lib/image_repo
WORKDIR /var/lib/image_repo
# A numeric id, so Kubernetes' runAsNonRoot can verify it.
USER 10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=4)"]
ENTRYPOINT ["python3", "/usr/local/bin/image_repo-entrypoint"]
