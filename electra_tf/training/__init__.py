"""The training loop and what it needs: builder (no side effects), step, trainer, optimizers, checkpoints."""
