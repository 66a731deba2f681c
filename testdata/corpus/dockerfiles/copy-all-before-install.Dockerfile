# Covers: the mistake tutorials show on purpose, the whole context copied before pip install
# (every code edit reinstalls the dependencies); BuildKit builds it all the same.
# Expect: lowers
FROM python:3.10-slim
WORKDIR /app
COPY . .
RUN pip install -r requirements.txt
CMD ["python", "predict.py"]
