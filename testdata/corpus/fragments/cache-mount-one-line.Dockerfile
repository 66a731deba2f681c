# Fragment: the cache-mount RUN on one line.
RUN --mount=type=cache,target=/root/.cache/pip pip install --upgrade -r requirements.txt
