# Fragment: RUN with pip's cache mounted, as a tip shows it, without the FROM around it.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -r requirements.txt
