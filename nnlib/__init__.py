"""nnlib: neural networks from scratch in NumPy, the library behind the book.

Where each idea lives:

- ``mnist``: where the digits come from (sources, checksums, cache, IDX files)
- ``data``: the digits as arrays (normalise, split, batch, check)
- ``layout``: channels last, views between (N, C, H, W) and (pixels, channels)
- ``kernels``: im2col convolution, pooling, BatchNorm as chapter 4 writes
  them, each with a naive loop reference
- ``fast_kernels``: the same numbers with speed tricks, named one by one
  (what the layers call)
- ``layers``: Linear, Conv2d, MaxPool2d, BatchNorm, activations, Sequential;
  each layer also says how it runs for prediction (its inference steps)
- ``init``: N(0,1), scaled uniform, Xavier/Glorot, He/Kaiming
- ``losses``: softmax cross-entropy; ``optim``: SGD, Adam, AdamW, schedules
- ``train``: fit / evaluate / predict with callbacks; ``live``: the live view
- ``inference``: the forward pass rewritten for prediction (same numbers, less work)
- ``metrics``: confusion matrix, dead ReLUs; ``report``: trained numbers
  marked ≈, spreads and verdicts over seeds, McNemar's test
- ``augment``: shifts, rotations, elastic distortions; ``ensemble``: averaged
  predictions
- ``autograd``: reverse-mode automatic differentiation (chapter 7)
- ``plots``, ``explore``: figures and widgets for the chapters
- ``gradcheck``: numerical gradient checks; ``io``: save and load models
- ``models``: the book's networks
"""
__version__ = "0.1.0"
