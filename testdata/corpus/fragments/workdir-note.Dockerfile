# Fragment: WORKDIR with notes below it.
WORKDIR /srv/model
# Later RUN, COPY and CMD work relative to /srv/model.
# WORKDIR makes the directory when it is missing.
