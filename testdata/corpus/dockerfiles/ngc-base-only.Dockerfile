# Covers: a file that is one FROM of an image on another registry (NVIDIA's nvcr.io), with
# only comments after it: an image that is its base, unchanged.
# Expect: lowers
FROM nvcr.io/nvidia/pytorch:24.01-py3
# Everything the training job needs already ships in the NGC image.
