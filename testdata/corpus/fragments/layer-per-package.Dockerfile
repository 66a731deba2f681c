# Fragment: one layer per step, then the same in one layer.
RUN apt-get update
RUN apt-get install -y libgomp1
RUN apt-get install -y libsndfile1

RUN apt-get update && apt-get install -y \
    libgomp1 \
    libsndfile1 \
    && rm -rf /var/lib/apt/lists/*
