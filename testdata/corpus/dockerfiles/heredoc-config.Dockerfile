# syntax=docker/dockerfile:1
# Covers: heredocs: a RUN script over several lines and a COPY of an inline config file.
# Expect: lowers
FROM python:3.11-slim
WORKDIR /srv
RUN <<EOT
set -e
pip install --no-cache-dir fastapi uvicorn
mkdir -p /srv/config
EOT
COPY <<EOT /srv/config/serving.yaml
model: distilbert-base-uncased
batch_size: 16
EOT
CMD ["uvicorn", "app:app"]
