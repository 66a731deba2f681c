# Covers: a snippet with `...` standing for what the reader fills in. To BuildKit `...` is one
# more word: a pip argument, a source path, a CMD argument. It parses and lowers.
# Expect: lowers
FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt ...
COPY ... /app/
CMD ["python", "..."]
