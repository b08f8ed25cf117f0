"""The manifest: v1, v2 (BEP 52) and hybrid info dicts, their hashes, and the .torrent around them.

Modules, by job:

* :mod:`.model`: :class:`FileEntry`, :class:`Info`, :class:`Metainfo` (hashes, layout);
* :mod:`.fields`: field access and the path-safety rules every format shares;
* :mod:`.v1`: ``pieces`` and the ``length`` / ``files`` layout (BEP 3, BEP 47 pad files);
* :mod:`.v2`: the ``file tree`` and ``piece layers`` (BEP 52);
* :mod:`.parse`: :func:`parse_info` / :func:`parse_torrent` (version dispatch, hybrid checks);
* :mod:`.build`: :func:`build_info`, :func:`build_info_v2`, :func:`encode_torrent`.
"""

from p2pshare.core.metainfo.build import build_info, build_info_v2, choose_piece_length, encode_torrent
from p2pshare.core.metainfo.fields import validate_component
from p2pshare.core.metainfo.model import FileEntry, Format, Info, Metainfo
from p2pshare.core.metainfo.parse import parse_info, parse_torrent

__all__ = [
    "FileEntry",
    "Format",
    "Info",
    "Metainfo",
    "build_info",
    "build_info_v2",
    "choose_piece_length",
    "encode_torrent",
    "parse_info",
    "parse_torrent",
    "validate_component",
]
