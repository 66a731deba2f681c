# Covers: ADD of a model file from a URL, ADD --checksum pinning it, COPY --chown and
# --chmod of code for a non-root user, VOLUME for the cache directory.
# Expect: lowers
FROM python:3.11-slim
RUN useradd -m -u 1000 appuser
ADD https://example.com/models/classifier-v3.onnx /models/
ADD --checksum=sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 https://example.com/models/labels.txt /models/
COPY --chown=appuser:appuser --chmod=0755 src/ ./src/
VOLUME ["/home/appuser/.cache"]
USER appuser
CMD ["python", "src/classify.py"]
