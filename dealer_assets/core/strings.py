"""The bytes of a polars String column as numpy arrays, for checks that run in a few vector passes."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa


def string_buffers(column: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, data): value i is data[offsets[i]:offsets[i + 1]], a null being empty.

    Read in place from the column's Arrow export (`large_string`), without pyarrow's compute kernels, whose
    first use costs a fresh process about 25 ms.
    """
    array = column.to_arrow()
    if isinstance(array, pa.ChunkedArray):
        array = pa.concat_arrays(array.chunks) if array.num_chunks != 1 else array.chunk(0)
    if array.type != pa.large_string():
        array = array.cast(pa.large_string())
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    data = np.frombuffer(array.buffers()[2] or b"", dtype=np.uint8)[: offsets[-1]]
    return offsets, data
