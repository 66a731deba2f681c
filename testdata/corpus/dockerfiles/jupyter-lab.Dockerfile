# Covers: a notebook image: one RUN installing many packages over continuation lines, EXPOSE,
# an exec-form CMD whose arguments hold quotes and an equals sign.
# Expect: lowers
FROM python:3.10-slim
WORKDIR /notebooks
RUN pip install --no-cache-dir \
    jupyterlab \
    numpy \
    pandas \
    polars \
    scikit-learn \
    matplotlib
EXPOSE 8888
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser", "--allow-root", "--ServerApp.token=''"]
