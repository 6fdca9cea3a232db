"""The one exception every data problem raises: a clear, single-line message naming the culprit."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset path, file, key or option is unusable.

    The message is one line and names the file, key or value at fault (e.g. the image that cannot
    be decoded), so the user can fix the data without reading a traceback.
    """
