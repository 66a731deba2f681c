# Fragment: COPY forms, the last with `#` after it (more source paths, not a comment).
COPY src dest
COPY requirements.txt /srv/
COPY ./checkpoints /models  # large files, keep them last
