# CSP's production image: web (gunicorn), worker and beat (Celery) all run from it; see docker-compose.yml.

# Front-end libraries come from npm at build time, as `make` does; none are committed.
FROM node:20-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund && npm run --silent vendor

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies first, read from pyproject.toml, so code changes reuse this layer. The project itself
# runs from /app (not installed into site-packages) so that templates/ and static/ are found.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
COPY --from=assets /build/static/vendor/ static/vendor/
# collectstatic only reads settings; the build has no database and no secrets.
RUN DEBUG=0 SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
    && useradd --create-home --uid 10001 csp

USER csp
EXPOSE 8000
CMD ["gunicorn", "csp.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
