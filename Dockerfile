# Tzurot: one container, one process (Discord gateway + internal API + job workers),
# with an embedded redis-server for when REDIS_URL is not set.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/data \
    MODELS_DIR=/app/models \
    PERSONALITIES_DIR=/app/personalities

RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.lock ./
RUN python -m pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock

COPY tzurot ./tzurot
COPY personalities ./personalities
# The local embedding model (EMBEDDING_MODEL=local): fetched (sha256-pinned) and built into
# ONNX once, here, so a container never downloads it.
RUN python -m tzurot prepare-models

RUN useradd --system --uid 10001 --home-dir /data tzurot \
    && mkdir -p /data && chown tzurot /data
USER tzurot
VOLUME ["/data"]

# The internal API; bind beyond loopback (API_HOST=0.0.0.0) only with API_TOKEN set.
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD python -c "import urllib.request,os; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('API_PORT','8080'), timeout=4)"

STOPSIGNAL SIGTERM
CMD ["python", "-m", "tzurot"]
