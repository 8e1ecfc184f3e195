"""``python -m azure_sciml.app``: the ``azure-sciml`` console script."""

from azure_sciml.app import main

main()
