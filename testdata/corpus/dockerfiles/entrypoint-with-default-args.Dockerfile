# Covers: ENTRYPOINT in exec form with CMD as its default arguments, a shell-form CMD before it
# (the later CMD wins), ARG used in a RUN, STOPSIGNAL.
# Expect: lowers
FROM python:3.12-slim
ARG EPOCHS=5
WORKDIR /job
COPY src/ src/
RUN echo "default epochs: ${EPOCHS}" > /job/defaults.txt
CMD python src/train.py --epochs 1
ENTRYPOINT ["python", "-u", "src/train.py"]
CMD ["--epochs", "5"]
STOPSIGNAL SIGINT
