"""Training a design (contract §6): the loop over mini-batches, its metrics, and what it writes.
No widgets: the app's Train panel calls down into it."""
