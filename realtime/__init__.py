"""``ganvoice.realtime``: the torch-free runtime (ONNX Runtime + sounddevice)."""
