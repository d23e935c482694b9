"""The training app (extra `train`): the only package that imports Lightning. Config, batches, augmentation,
callbacks, the LightningModules, the phase loop with resume, quantisation-aware fine-tuning."""
