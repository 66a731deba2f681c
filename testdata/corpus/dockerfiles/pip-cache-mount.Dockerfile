# syntax=docker/dockerfile:1
# Covers: the syntax directive, RUN --mount=type=cache for pip's cache (kept across builds,
# never in a layer), a bind mount of requirements.txt instead of a COPY.
# Expect: lowers
FROM python:3.11-slim
WORKDIR /app
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \
    pip install -r /tmp/requirements.txt
COPY . .
CMD ["python", "train.py"]
