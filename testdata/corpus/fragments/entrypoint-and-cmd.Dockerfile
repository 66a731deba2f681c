# Fragment: ENTRYPOINT and CMD together, both in exec form.
ENTRYPOINT ["torchrun", "--nproc_per_node=2"]
CMD ["train.py", "--epochs", "3"]
# Together: torchrun --nproc_per_node=2 train.py --epochs 3
