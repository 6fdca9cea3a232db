"""lightning_gancomp: GAN generator compression (CAGAN, DCP, PPCD-GAN, CoroNetGAN) on PyTorch Lightning."""

__version__ = "0.1.0"
