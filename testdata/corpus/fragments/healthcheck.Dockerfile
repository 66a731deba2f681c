# Fragment: a HEALTHCHECK with options, continued on a second line.
HEALTHCHECK --interval=1m --timeout=5s --retries=5 \
  CMD wget -q -O- http://localhost:9000/ready || exit 1
