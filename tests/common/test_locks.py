"""sslx.common.locks: one writer per output folder."""

import os

import pytest

from sslx.common.locks import FolderLock
from sslx.errors import InputError


def test_a_second_writer_of_a_folder_is_refused_naming_the_first(tmp_path):
    first = FolderLock(tmp_path)
    with pytest.raises(InputError, match=rf"is being written by process {os.getpid()} \("):
        FolderLock(tmp_path)
    assert FolderLock(tmp_path, "part-2-of-2").path.exists()  # another name, another lock
    first.release()
    assert not first.path.exists()
    FolderLock(tmp_path).release()  # free again
