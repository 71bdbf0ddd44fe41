# zhuqi service image. Dependencies sit in their own cached layer; the source comes after.
# DATABASE_URL picks the database: postgresql://... for production, or the default SQLite
# file under /data (mount a volume there).
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ZHUQI_ENVIRONMENT=production \
    DATABASE_URL=sqlite:////data/zhuqi.db

WORKDIR /srv/zhuqi

# 1. dependencies only: a stub of each package lets pip resolve the project without the source
COPY pyproject.toml README.md ./
RUN mkdir -p app matching seed migrations \
    && touch app/__init__.py matching/__init__.py seed/__init__.py migrations/__init__.py \
    && pip install '.[postgres]' \
    && pip uninstall -y zhuqi

# 2. the source
COPY app ./app
COPY matching ./matching
COPY seed ./seed
COPY migrations ./migrations
RUN pip install --no-deps . && useradd --system --create-home zhuqi && mkdir -p /data \
    && chown zhuqi /data
USER zhuqi
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"

# ZHUQI_SECRET_KEY must be set: production refuses the placeholder.
CMD ["sh", "-c", "zhuqi migrate && zhuqi serve --host 0.0.0.0 --port 8000"]
