"""Training: recipes (TOML -> typed configs), the GAN step, the run loop, checkpoints, ``ganvoice train``."""
