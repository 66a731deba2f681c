# Fragment: USER by number, then `docker run` hardening flags pasted below it, which are not
# Dockerfile instructions.
USER 1000:1000

# Mount the root file system read-only:
docker run --read-only --tmpfs /tmp model-server

# No capabilities beyond binding the port:
docker run --cap-drop=ALL --cap-add=NET_BIND_SERVICE model-server
