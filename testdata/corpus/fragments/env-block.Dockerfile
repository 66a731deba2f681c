# Fragment: environment for a Hugging Face job.
ENV TOKENIZERS_PARALLELISM=false
ENV HF_HOME=/cache/hf TRANSFORMERS_OFFLINE=1
