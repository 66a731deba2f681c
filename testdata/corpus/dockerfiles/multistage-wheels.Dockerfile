# Covers: a multi-stage build (a full python image builds wheels, a slim one installs them),
# COPY --from a named stage, ENV extending PATH from its old value.
# Expect: lowers
FROM python:3.12 AS wheels
WORKDIR /src
COPY requirements.txt .
RUN pip wheel --wheel-dir /wheels -r requirements.txt

FROM python:3.12-slim
COPY --from=wheels /wheels /wheels
RUN pip install --no-index --find-links=/wheels /wheels/*.whl && rm -rf /wheels
ENV PATH=/opt/model/bin:$PATH
WORKDIR /opt/model
COPY serve.py .
CMD ["python", "serve.py"]
