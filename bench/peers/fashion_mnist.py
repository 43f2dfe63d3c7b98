"""Fashion-MNIST as NumPy arrays for the Python peers and twins (numpy only, so that every peer
can use it): Debian's dataset-fashion-mnist IDX files, as Tessera's FashionMnist reads them."""
import gzip
import os
import struct

import numpy as np

FASHION_DIR = os.environ.get("TESSERA_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fashion_arrays(split):
    """(images float32 [N, 28, 28] = pixels / 255, labels uint8 [N]) of split "train" or "test"."""
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(f"{FASHION_DIR}/{prefix}-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    y = read_idx(f"{FASHION_DIR}/{prefix}-labels-idx1-ubyte.gz")
    return x, y
