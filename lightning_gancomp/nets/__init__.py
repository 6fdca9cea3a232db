"""Generator and discriminator architectures (torch only, no Lightning)."""
