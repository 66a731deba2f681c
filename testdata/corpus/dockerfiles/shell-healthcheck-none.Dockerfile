# Covers: SHELL switching RUN to bash, HEALTHCHECK in the base stage turned off with
# HEALTHCHECK NONE in the stage built on it, EXPOSE with a protocol.
# Expect: lowers
FROM python:3.11-slim AS base
HEALTHCHECK CMD curl -fs http://localhost:9000/ready || exit 1
EXPOSE 9000/tcp

FROM base AS batch
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN pip list | grep -i torch || true
HEALTHCHECK NONE
CMD ["python", "batch.py"]
