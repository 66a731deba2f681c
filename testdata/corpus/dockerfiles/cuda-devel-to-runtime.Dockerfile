# Covers: a GPU multi-stage build (CUDA devel image compiles an extension, the runtime image
# keeps the result), COPY --from by stage index, update-alternatives in a RUN.
# Expect: lowers
FROM nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04
RUN apt-get update && apt-get install -y python3.10 python3-pip git
RUN update-alternatives --install /usr/bin/python python /usr/bin/python3.10 1
WORKDIR /ext
COPY kernels/ ./kernels/
RUN python setup.py bdist_wheel

FROM nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04
COPY --from=0 /ext/dist/ /wheels/
RUN apt-get update && apt-get install -y python3-pip \
    && pip3 install /wheels/*.whl \
    && rm -rf /var/lib/apt/lists/*
CMD ["python3", "-m", "kernels.bench"]
