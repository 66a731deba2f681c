# Covers: the shortest file a tutorial shows: one FROM and a note below it.
# Expect: lowers
FROM python:3.9-slim
# slim: the same Python without compilers and docs
