# Fragment: EXPOSE of two ports, one with its protocol.
EXPOSE 9000/tcp 9001
# EXPOSE documents the ports; `docker run -p` publishes them.
