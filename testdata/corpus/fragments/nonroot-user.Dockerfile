# Fragment: making a user and switching to it.
RUN useradd --create-home --uid 1000 trainer
USER trainer
