# RAGGEN web and worker image (CPU only).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    DATA_DIR=/data

WORKDIR /app
RUN useradd --create-home --uid 1000 raggen && mkdir -p /data && chown raggen /data

COPY requirements.txt .
# The CPU build of torch comes from PyTorch's CPU index; everything else from PyPI.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt

COPY --chown=raggen . .
# A placeholder key: the build generates none into /data (the real one comes at run time).
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput --verbosity 0

USER raggen
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["sh", "-c", "python manage.py migrate --noinput && python manage.py ensure_admin && python manage.py rebuild_index --stale && python -m raggen.server -b 0.0.0.0 -p 8000 raggen.asgi:application"]
