# Covers: a snippet that starts with RUN, as the hardening sections of tutorials do, before
# any FROM: BuildKit has no stage to put it in.
# Expect: rejected at line 5: no build stage in current context

RUN useradd --uid 1000 --create-home trainer
USER trainer
FROM python:3.11-slim
