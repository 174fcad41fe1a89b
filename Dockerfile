# One image for every Bazar node: a catalog replica, an order replica or the front-end, chosen by
# the first argument (`catalog`, `order`, `frontend`) and configured by the environment variables
# and flags of docs/api.md ("Running a node by hand"). How to run a cluster of them, on one
# machine or several: docs/containers.md.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

# A node needs aiohttp and SQLAlchemy only; the window's Qt stays out (requirements-node.txt).
COPY requirements-node.txt /app/
RUN python -m pip install -r /app/requirements-node.txt \
 && groupadd --system --gid 10001 bazar \
 && useradd --system --uid 10001 --gid bazar --home-dir /var/lib/bazar --no-create-home bazar \
 && mkdir -p /var/lib/bazar \
 && chown bazar:bazar /var/lib/bazar

# Only the layers a node imports (docs/architecture.md): the pure cores and the aiohttp runtime.
COPY nodes/__init__.py nodes/__main__.py /app/nodes/
COPY nodes/core /app/nodes/core
COPY nodes/runtime /app/nodes/runtime
COPY assets/books.json /app/assets/books.json

# In a container a node must be reachable from its peers, so it binds every interface of the
# container; that is this explicit setting, never the default (127.0.0.1, nodes/runtime/config.py).
# Every node listens on 8000 inside its own container.
ENV BAZAR_HOST=0.0.0.0 \
    PORT=8000 \
    BAZAR_SECRET_FILE=/run/secrets/bazar_secret
EXPOSE 8000

# The SQLite databases (catalog0.db, order0.db, ... named by role and BAZAR_ID) are written to
# the working folder, a volume, so they outlive the container.
WORKDIR /var/lib/bazar
VOLUME ["/var/lib/bazar"]
USER bazar

# "Is it up?" is the node's own GET /health. An order replica whose catalog replica is away
# answers 503 "degraded": it is alive and serves again as soon as its catalog is back, so that
# counts as healthy too (an orchestrator that replaced it would gain nothing). Standard library
# only: the image has no curl.
HEALTHCHECK --interval=5s --timeout=5s --start-period=10s --retries=3 \
    CMD python -c "import http.client as h, os, sys; c = h.HTTPConnection('127.0.0.1', int(os.environ.get('PORT', '8000')), timeout=2); c.request('GET', '/health'); sys.exit(c.getresponse().status not in (200, 503))"

# The cluster secret is never in the image: it comes from BAZAR_SECRET, or from the file named by
# BAZAR_SECRET_FILE (a Compose or Swarm secret). `exec` makes the node process 1, so `docker stop`'s
# SIGTERM reaches it and it stops cleanly (nodes/runtime/server.py).
ENTRYPOINT ["/bin/sh", "-c", "if [ -z \"$BAZAR_SECRET\" ] && [ -r \"$BAZAR_SECRET_FILE\" ]; then BAZAR_SECRET=$(cat \"$BAZAR_SECRET_FILE\"); export BAZAR_SECRET; fi; exec python -m nodes \"$@\"", "bazar-node"]
CMD ["--help"]
