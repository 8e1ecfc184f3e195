"""Placeholder while the real Azure is being written (lands within the hour)."""

import torch


class Azure(torch.optim.Adam):
    pass
