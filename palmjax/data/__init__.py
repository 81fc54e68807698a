"""Datasets: image folders for SR, simulators and TFDS builders for the liveness tasks."""
