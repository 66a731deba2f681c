# Covers: shell commands pasted into a Dockerfile between instructions (`docker run ...`):
# BuildKit names the first word as an unknown instruction, on its line.
# Expect: rejected at line 8: unknown instruction: docker
FROM python:3.11-slim
COPY . /app

# Run it with the GPU:
docker run --gpus all -p 8000:8000 model-server:latest
