# Covers: `#` after FROM is not a comment either: FROM gets four words, and BuildKit rejects
# the line.
# Expect: rejected at line 5: FROM requires either one or three arguments

FROM python:3.11-slim   # about 130 MB
RUN pip install --no-cache-dir scikit-learn
