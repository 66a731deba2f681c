# Covers: ENV in both forms (the old `ENV KEY value` and `KEY=value` pairs, quoted values),
# variables used in WORKDIR and RUN, LABEL.
# Expect: lowers
FROM python:3.11-slim
ENV PYTHONUNBUFFERED 1
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME="/cache/hugging face" \
    APP_HOME=/srv/app
LABEL org.opencontainers.image.title="sentiment-api" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR $APP_HOME
RUN mkdir -p "$HF_HOME" && echo "models in $HF_HOME"
CMD ["python", "-m", "api"]
