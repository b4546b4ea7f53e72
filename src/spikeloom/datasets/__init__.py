"""Datasets: the built-in ES-Digits and readers for public neuromorphic datasets."""
