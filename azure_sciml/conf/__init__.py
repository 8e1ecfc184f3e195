"""Hydra configs of the azure-sciml app (a package so Hydra can find them as pkg://azure_sciml.conf)."""
