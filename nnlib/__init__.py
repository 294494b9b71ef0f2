"""nnlib: neural networks from scratch in NumPy, the library behind the book.

Where each idea lives:

- ``data``: MNIST (sources, checksums, cache, IDX files), splits, batches
- ``kernels``: im2col convolution, pooling, BatchNorm as chapter 4 writes
  them, each with a naive loop reference
- ``fast_kernels``: the same numbers with speed tricks, named one by one
  (what the layers call)
- ``layers``: Linear, Conv2d, MaxPool2d, BatchNorm, activations, Sequential
- ``init``: N(0,1), scaled uniform, Xavier/Glorot, He/Kaiming
- ``losses``: softmax cross-entropy; ``optim``: SGD, Adam, AdamW, schedules
- ``train``: fit / evaluate / predict with callbacks; ``live``: the dashboard
- ``inference``: the forward pass rewritten for prediction (same numbers, less work)
- ``plots``, ``explore``: figures and widgets for the chapters
- ``gradcheck``: numerical gradient checks; ``io``: save and load models
- ``models``: the book's networks
"""
__version__ = "0.1.0"
