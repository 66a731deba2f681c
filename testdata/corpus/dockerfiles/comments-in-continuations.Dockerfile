# Covers: comment lines and blank lines inside a continued RUN (Dockerfile syntax drops them
# from the command), and a continued RUN ending the file.
# Expect: lowers
FROM ubuntu:22.04
RUN apt-get update \
    # the compiler for packages without wheels
    && apt-get install -y build-essential \

    # python itself
    && apt-get install -y python3 python3-pip \
    && rm -rf /var/lib/apt/lists/*
RUN pip3 install numpy \
    scipy
