"""Exports (extra `export`): ONNX (+ int8), LiteRT, Core ML, the pipeline from a checkpoint, bundle + model card.

Imports `ferkit.models`, never `ferkit.training` (no Lightning). Importing this package imports nothing heavy."""
