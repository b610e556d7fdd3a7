"""Fetching published datasets: one resumable, checksum-verified downloader (``download``) and
one module per dataset (``medmnist``, ``kermany``)."""
