# Fragment: system libraries for a Python package, in one layer.
# opencv-python needs these system libraries at import time
RUN apt-get update && apt-get install -y --no-install-recommends \
    libgl1 \
    libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
