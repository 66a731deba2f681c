# Covers: instructions indented (pasted from a list in a blog post), which Dockerfile syntax
# allows, and `COPY ..` with its space lost: one argument, rejected on its line.
# Expect: rejected at line 8: COPY requires at least two arguments
    FROM python:3.10-slim
    WORKDIR /app
    COPY requirements.txt .
    RUN pip install -r requirements.txt
    COPY ..
    CMD ["python", "app.py"]
