# Fragment: a pip install from another package index.
# CPU-only PyTorch: a much smaller download than the CUDA wheels.
RUN pip install torch torchaudio --index-url https://download.pytorch.org/whl/cpu
