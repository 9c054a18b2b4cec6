"""``ganvoice.export``: torch -> one stateful streaming ONNX graph (needs the ``[train]`` extra)."""
