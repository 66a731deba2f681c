# Covers: `as` in lowercase in FROM ... as NAME, and instructions written in lowercase, which
# Dockerfile syntax accepts as well.
# Expect: lowers
FROM python:3.11 as deps
workdir /deps
copy requirements.txt .
run pip install --prefix=/install -r requirements.txt

from python:3.11-slim as runtime
copy --from=deps /install /usr/local
copy app/ /app/
workdir /app
cmd ["python", "main.py"]
