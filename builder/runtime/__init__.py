"""What apps load: onnxruntime + tokenizers + numpy only. Never imports torch, transformers, hydra or datasets."""
