"""The build side: the driver (driver.py) runs the stages (stages/) over a context (context.py) with its
services (models.py, sessions.py, cache.py, host_lock.py), then writes and publishes the bundle (writer.py,
card.py). Imports torch, transformers and onnx where it needs them; the runtime never imports it."""
