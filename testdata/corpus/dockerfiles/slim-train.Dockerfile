# Covers: a python slim base, WORKDIR, requirements copied alone and installed before the
# code (so an edit to the code keeps the pip layer cached), exec-form CMD.
# Expect: lowers
FROM python:3.11-slim

WORKDIR /workspace

# Dependencies first: they change less often than the training code.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY train/ ./train/
COPY configs/ ./configs/

CMD ["python", "-m", "train", "--config", "configs/base.yaml"]
