# Covers: `#` after an instruction is not a comment: after COPY its words are more source
# paths ("#", "code", "changes") and the last one ("often") the destination. BuildKit accepts
# the file; the build fails later, when those paths are not in the context.
# Expect: lowers
FROM python:3.10-slim
WORKDIR /app
COPY . .   # code changes often
RUN pip install -r requirements.txt
