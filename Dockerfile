# zhuqi service image: one image for the API (`zhuqi serve`), the workers (`zhuqi worker`) and
# the migration step (`zhuqi migrate`); compose.yaml runs all three.
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ZHUQI_ENVIRONMENT=production \
    ZHUQI_LOG_JSON=true \
    DATABASE_URL=sqlite:////data/zhuqi.db

# tini is PID 1: it forwards SIGTERM to zhuqi and reaps zombies (`sh -c` would swallow it).
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home zhuqi \
    && mkdir -p /data && chown zhuqi /data

WORKDIR /srv/zhuqi

# 1. dependencies: this layer depends on the lock file alone, so editing the README or the
#    source never rebuilds it, and every build installs exactly the same versions.
COPY requirements.lock ./
RUN pip install --no-deps -r requirements.lock

# 2. the source, installed without touching the dependencies again
COPY pyproject.toml README.md ./
COPY app ./app
COPY matching ./matching
COPY seed ./seed
COPY migrations ./migrations
RUN pip install --no-deps . && pip check

USER zhuqi
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]

# Exec form throughout: no shell between tini and the process that must get SIGTERM.
# Migrations are a separate step: `docker run IMAGE zhuqi migrate` (compose: the migrate
# service), run once before the servers start, never by each replica racing the others.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["zhuqi", "serve", "--host", "0.0.0.0", "--port", "8000"]
