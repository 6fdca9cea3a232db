"""Generator and discriminator architectures (torch only, no Lightning).

Importing this package registers every family with ``nets.base.NET_REGISTRY`` so that
``load_net`` can rebuild any saved network by class name.
"""

from lightning_gancomp.nets import biggan, bisenet, pix2pix, ppsagan, sngan, stylegan2  # noqa: F401
from lightning_gancomp.nets.base import GanNet, load_net, save_net

__all__ = ["GanNet", "biggan", "bisenet", "load_net", "pix2pix", "ppsagan", "save_net", "sngan", "stylegan2"]
