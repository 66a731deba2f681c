# Covers: a service image: a user made with useradd and switched to with USER, COPY --chown,
# EXPOSE, HEALTHCHECK with options and a shell-form command, ENTRYPOINT plus CMD.
# Expect: lowers
FROM python:3.11-slim

RUN useradd --create-home --uid 10001 inference
WORKDIR /home/inference/app

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY --chown=inference:inference service/ ./service/

USER inference
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://localhost:8080/healthz')" || exit 1

ENTRYPOINT ["uvicorn"]
CMD ["service.api:app", "--host", "0.0.0.0", "--port", "8080"]
