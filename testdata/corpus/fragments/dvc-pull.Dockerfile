# Fragment: data versioned with DVC, fetched at build time; a wildcard COPY.
RUN pip install dvc[s3] && dvc init --no-scm
COPY .dvc/config .dvc/config
COPY *.dvc ./
RUN dvc pull
