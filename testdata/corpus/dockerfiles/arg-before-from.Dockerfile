# Covers: ARG before the first FROM picking the base image, ARG declared again inside the
# stage to use its value there, ENV set from an ARG with a default.
# Expect: lowers
ARG PYTHON_VERSION=3.11
ARG VARIANT=slim
FROM python:${PYTHON_VERSION}-${VARIANT}

ARG PYTHON_VERSION
ARG MODEL_NAME=resnet50
ENV MODEL_NAME=${MODEL_NAME} \
    PYTHON_VERSION=${PYTHON_VERSION}

WORKDIR /models
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
CMD ["python", "export.py"]
