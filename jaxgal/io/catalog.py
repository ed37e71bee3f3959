"""Catalogues on disk: astropy Tables written atomically as FITS or Parquet.

The format follows the name: `.parquet` writes Parquet (needs pyarrow), anything else FITS
(a binary table). A write goes to a temporary file in the same directory, then
`os.replace` puts it in place, so a killed job leaves the old file or none, never half of
one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMPORARY_SUFFIX = ".tmp"


def catalog_format(path) -> str:
    """ "parquet" for a `.parquet` name (checking that pyarrow is there), else "fits"."""
    if Path(path).suffix.lower() != ".parquet":
        return "fits"
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ValueError(
            f"{path}: writing Parquet needs pyarrow (pip install pyarrow), or use a .fits name"
        ) from None
    return "parquet"


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; when the block ends without an error it
    is renamed over `path` (else deleted)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a fresh name, not mkstemp's file: that would give the result mkstemp's 0600 mode
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}{TEMPORARY_SUFFIX}")
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_table_atomically(table, path) -> Path:
    """Write the astropy `table` to `path` (FITS or Parquet by its name) atomically."""
    file_format = catalog_format(path)
    with atomic_path(path) as temporary:
        table.write(temporary, format=file_format, overwrite=True)
    return Path(path)


def read_table(path):
    """The astropy Table in the FITS or Parquet file at `path`."""
    from astropy.table import Table

    return Table.read(path, format=catalog_format(path))


def remove_temporary_files(directory, name: str = ""):
    """Delete the temporary files a killed `write_table_atomically` left in `directory`
    (of the file `name` only, if given)."""
    pattern = f".{name}*{TEMPORARY_SUFFIX}" if name else f".*{TEMPORARY_SUFFIX}"
    for leftover in Path(directory).glob(pattern):
        leftover.unlink(missing_ok=True)
