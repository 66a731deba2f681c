# Covers: "bad then good" written as two stages of one file, and a last stage that is only a
# FROM: the image is the last stage, the earlier ones are built only if something uses them.
# Expect: lowers

# Bad: one layer per package.
FROM ubuntu:22.04
RUN apt-get update
RUN apt-get install -y python3
RUN apt-get install -y python3-pip

# Good: one layer, and the apt lists removed in it.
FROM ubuntu:22.04
RUN apt-get update && \
    apt-get install -y python3 python3-pip && \
    rm -rf /var/lib/apt/lists/*

# Pinned: the image to use.
FROM python:3.11.9-slim
