# Fragment: a shell-form CMD running two commands.
CMD python fetch_weights.py && exec uvicorn api:app --port 8000
