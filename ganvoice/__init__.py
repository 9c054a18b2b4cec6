"""ganvoice: streaming GAN audio generators (train in PyTorch, export to ONNX, play in real time).

The top-level package imports numpy-side code only; torch is imported by the training modules.
"""

__version__ = "0.1.0"
