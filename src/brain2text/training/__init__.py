"""Training a run: the loop, its steps, augmentation, optimizers, the LR finder, the watch."""
