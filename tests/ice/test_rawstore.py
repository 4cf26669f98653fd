"""The raw store's names: versioned copies keep their suffixes, no remote name escapes raw/."""

from __future__ import annotations

import pytest

from icechat.exceptions import UnsafePathError
from icechat.ice.rawstore import safe_local_name, versioned_name


def test_versioned_names_keep_their_suffixes():
    assert versioned_name("A_ICECHAT_20261126_02.zip.pgp", 2) == "A_ICECHAT_20261126_02.v2.zip.pgp"


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a/b", "a\\b", "manifest.json", ""])
def test_unsafe_local_names(name):
    with pytest.raises(UnsafePathError):
        safe_local_name(name, "raw")
