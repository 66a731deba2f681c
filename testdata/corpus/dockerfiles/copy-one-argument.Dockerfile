# Covers: COPY with a source and no destination, a slip when copying one directory:
# BuildKit rejects the line.
# Expect: rejected at line 6: COPY requires at least two arguments
FROM python:3.10
WORKDIR /app
COPY ./service
RUN pip install -r service/requirements.txt
