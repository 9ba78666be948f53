# sopbot: one image for every role (web + inbox worker today; the scheduler joins later).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SOPBOT_HOST=0.0.0.0 \
    SOPBOT_PORT=8000 \
    SOPBOT_LOG_FORMAT=json \
    SOPBOT_DATABASE_URL=sqlite:////data/sopbot.db

WORKDIR /srv/sopbot

COPY pyproject.toml README.md requirements.lock ./
COPY app ./app
COPY handlers ./handlers
COPY migrations ./migrations
RUN pip install --no-cache-dir -c requirements.lock . \
 && useradd --system --home /srv/sopbot sopbot \
 && mkdir -p /data \
 && chown sopbot /data

# Flows and keywords are configuration: mount your own over these to change them.
COPY sop_flows ./sop_flows
COPY keywords.yaml ./

USER sopbot
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["sopbot", "serve"]
