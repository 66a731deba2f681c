# Covers: a GPU base image (nvidia/cuda runtime with cuDNN), apt-get with continuation lines,
# PyTorch from its CUDA wheel index, ENV DEBIAN_FRONTEND for a quiet apt.
# Expect: lowers
FROM nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
        python3 \
        python3-pip \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/train
RUN pip3 install --no-cache-dir torch torchvision --index-url https://download.pytorch.org/whl/cu121
COPY requirements.txt .
RUN pip3 install --no-cache-dir -r requirements.txt
COPY . .
CMD ["python3", "train.py", "--device", "cuda"]
